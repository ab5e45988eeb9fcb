#!/usr/bin/env bash
# mkcerts.sh DIR: test certificates made with the openssl command — a CA,
# a server certificate for localhost/127.0.0.1, a client certificate, an
# expired client certificate, and a second CA with its own client and
# server certificates. EC P-256 keys: fast to make.
set -euo pipefail
d=$1
mkdir -p "$d"
cd "$d"
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
ca() { # name subject
  key "$1.key"
  openssl req -x509 -new -key "$1.key" -subj "/CN=$2" -days 3650 -out "$1.crt" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
}
# leaf name ca cn ext [startdate enddate]
leaf() {
  key "$1.key"
  openssl req -new -key "$1.key" -subj "/CN=$3" -out "$1.csr"
  printf '%s\n' "$4" > "$1.ext"
  if [ $# -ge 6 ]; then
    # openssl ca takes explicit validity dates: an expired certificate
    # without faking the clock
    mkdir -p "ca_$2"
    : > "ca_$2/index.txt"
    [ -f "ca_$2/serial" ] || echo 1000 > "ca_$2/serial"
    cat > "ca_$2/ca.cnf" <<CNF
[ca]
default_ca = d
[d]
dir = ca_$2
database = ca_$2/index.txt
new_certs_dir = ca_$2
serial = ca_$2/serial
default_md = sha256
policy = p
unique_subject = no
[p]
commonName = supplied
CNF
    openssl ca -batch -config "ca_$2/ca.cnf" -cert "$2.crt" -keyfile "$2.key" -in "$1.csr" \
      -out "$1.crt" -startdate "$5" -enddate "$6" -extfile "$1.ext" -notext 2>/dev/null
  else
    openssl x509 -req -in "$1.csr" -CA "$2.crt" -CAkey "$2.key" -CAcreateserial -days 365 \
      -sha256 -extfile "$1.ext" -out "$1.crt" 2>/dev/null
  fi
}
ca ca "orrery test CA"
ca otherca "other test CA"
srv='subjectAltName=DNS:localhost,DNS:orrery.test,IP:127.0.0.1
extendedKeyUsage=serverAuth'
cli='extendedKeyUsage=clientAuth'
leaf server ca localhost "$srv"
leaf server2 ca localhost "$srv"
leaf client ca client "$cli"
leaf expired ca expired "$cli" 20200101000000Z 20200201000000Z
leaf otherclient otherca otherclient "$cli"
leaf otherserver otherca localhost "$srv"
rm -f ./*.csr ./*.ext ./*.srl
