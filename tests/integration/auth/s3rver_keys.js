// s3rver_keys.js: s3rver (tests/node) with the access key pair given in the
// environment (S3_ACCESS_KEY, S3_SECRET_KEY) instead of its fixed one, and
// HTTPS when S3_CERT/S3_KEY name PEM files. Prints "ready" once listening.
// Usage: node s3rver_keys.js <dir> <port> <bucket>
'use strict';
const fs = require('fs');
const S3rver = require('s3rver');
const { DUMMY_ACCOUNT } = require('s3rver/lib/models/account');

const [dir, port, bucket] = process.argv.slice(2);
DUMMY_ACCOUNT.revokeAccessKey('S3RVER');
DUMMY_ACCOUNT.createKeyPair(process.env.S3_ACCESS_KEY, process.env.S3_SECRET_KEY);
const opts = {
  address: '127.0.0.1',
  port: Number(port),
  directory: dir,
  silent: true,
  configureBuckets: [{ name: bucket }],
};
if (process.env.S3_CERT) {
  opts.cert = fs.readFileSync(process.env.S3_CERT);
  opts.key = fs.readFileSync(process.env.S3_KEY);
}
new S3rver(opts).run((err) => {
  if (err) {
    console.error(err);
    process.exit(1);
  }
  console.log('ready');
});
