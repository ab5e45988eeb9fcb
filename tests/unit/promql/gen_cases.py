#!/usr/bin/env python3
"""gen_cases.py: asks Prometheus 2.42 itself what it makes of PromQL queries,
to build the expectation table of test_parser.c.

  gen_cases.py queries.json > table.inc

queries.json is a JSON list of query strings. Parse errors come from
`promtool check rules` (one recording rule per query); the printed form of
the queries that parse comes from a prometheus started on 127.0.0.1 (a free
port) with those rules, through /api/v1/rules (rule.Query().String()).
Queries with invalid UTF-8 cannot go through YAML and are skipped.
"""
import json, os, re, shutil, socket, subprocess, sys, tempfile, time, urllib.request


def yaml_quote(e):
    o = '"'
    for ch in e:
        c = ord(ch)
        if ch == '"':
            o += '\\"'
        elif ch == '\\':
            o += '\\\\'
        elif c == 9 or 0x20 <= c <= 0x7e or (0xa0 <= c <= 0xd7ff and c not in (0x2028, 0x2029)) \
                or (0xe000 <= c <= 0xfffd and c != 0xfeff) or c >= 0x10000:
            o += ch
        elif c < 0x10000:
            o += '\\u%04x' % c
        else:
            o += '\\U%08x' % c
    return o + '"'


def rules_yaml(exprs):
    lines = ["groups:", "- name: g", "  rules:"]
    for i, e in enumerate(exprs):
        lines += ["  - record: r%d" % i, "    expr: " + yaml_quote(e)]
    return "\n".join(lines) + "\n"


def c_string(s):
    o = '"'
    for ch in s.encode('utf-8'):
        if ch == ord('"'):
            o += '\\"'
        elif ch == ord('\\'):
            o += '\\\\'
        elif 32 <= ch < 127 and ch != ord('?'):  # '?' escaped: no trigraphs
            o += chr(ch)
        else:
            o += '\\%03o' % ch
    return o + '"'


def main():
    inputs = json.load(open(sys.argv[1]))
    d = tempfile.mkdtemp()
    prom = None
    try:
        rf = os.path.join(d, 'rules.yml')
        open(rf, 'w').write(rules_yaml(inputs))
        p = subprocess.run(['promtool', 'check', 'rules', rf], capture_output=True, text=True,
                           errors='backslashreplace')
        errs = {}
        for line in (p.stdout + p.stderr).splitlines():
            m = re.search(r'rule (\d+), "r\d+": (could not parse expression: )?(.*)$', line)
            if m:
                errs[int(m.group(1)) - 1] = m.group(3) if m.group(2) else None
        valid = [i for i in range(len(inputs)) if i not in errs]
        vf = os.path.join(d, 'valid.yml')
        open(vf, 'w').write(rules_yaml([inputs[i] for i in valid]))
        s = socket.socket()
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
        s.close()
        cfg = os.path.join(d, 'prom.yml')
        open(cfg, 'w').write("global:\n  evaluation_interval: 1h\nrule_files:\n- %s\n" % vf)
        prom = subprocess.Popen(['prometheus', '--config.file=' + cfg,
                                 '--storage.tsdb.path=' + os.path.join(d, 'data'),
                                 '--web.listen-address=127.0.0.1:%d' % port],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        printed = {}
        for _ in range(200):
            try:
                data = json.load(urllib.request.urlopen('http://127.0.0.1:%d/api/v1/rules' % port))
                if data['data']['groups']:
                    for r in data['data']['groups'][0]['rules']:
                        printed[valid[int(r['name'][1:])]] = r['query']
                    break
            except OSError:
                pass
            time.sleep(0.1)
        for i, q in enumerate(inputs):
            if i in errs:
                if errs[i] is not None:  # refused before parsing (empty expr)
                    print('    {%s, NULL, %s},' % (c_string(q), c_string(errs[i])))
            elif i in printed:
                print('    {%s, %s, NULL},' % (c_string(q), c_string(printed[i])))
    finally:
        if prom:
            prom.kill()
            prom.wait()
        shutil.rmtree(d)


if __name__ == '__main__':
    main()
