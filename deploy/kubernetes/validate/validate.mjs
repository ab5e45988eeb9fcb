// Validates Kubernetes objects against the API's OpenAPI schemas (from the
// kubernetes-models package): reads a JSON array of objects on stdin (the
// rendered kustomization), prints one line per object, and exits 1 when any
// object fails its schema (a wrong type, a missing required field, an
// unknown kind or apiVersion, a bad enum value). Unknown fields are NOT
// refused (the schemas allow them); the flag check of the test covers the
// part we most often get wrong, the containers' args.
//   kubectl kustomize deploy/kubernetes | (yaml → JSON) | node validate.mjs
import { readFileSync } from "node:fs";

const objs = JSON.parse(readFileSync(0, "utf8"));
let bad = 0;
for (const o of objs) {
  const name = `${o.kind}/${o.metadata && o.metadata.name}`;
  let mod;
  try {
    mod = await import(`kubernetes-models/${o.apiVersion}/${o.kind}`);
  } catch (e) {
    console.log(`FAIL ${name}: no schema for ${o.apiVersion} ${o.kind}`);
    bad++;
    continue;
  }
  try {
    const Cls = mod[o.kind];
    new Cls(o).validate();
    console.log(`ok   ${name}`);
  } catch (e) {
    console.log(`FAIL ${name}: ${e.message}`);
    bad++;
  }
}
console.log(`${objs.length - bad} of ${objs.length} objects valid`);
process.exit(bad ? 1 : 0);
