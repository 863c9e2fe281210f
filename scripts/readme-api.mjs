// The names README.md documents as xway's API, read from the README itself so that a name added to
// (or renamed in) the README is checked without anyone keeping a second list: the rows of its
// "## API" table, and every `xway.NAME` anywhere in it. Used by test/readme-api.test.js (each name
// is exported, at run time and in the types) and by scripts/packaging-test.mjs (a TypeScript file
// importing each from the installed package).
//
// How a table row is read:
//   - first column `xway.f(...)`           -> f, a member of the default export and a named export
//   - first column `C.m(...)` (C capitalised) -> C, a named export, with static member m; plain
//     identifiers in its second column are members of C's instances, `C.m2(...)` more statics
//   - first column `f(...)` or `f`          -> f, a named export
//   - first column a plain word (producer, consumer, either side): the second column's
//     identifiers are members of Ring's instances
//   - anywhere in the second column, a bare capitalised identifier (`XwayServer`, `NoRingError`)
//     is a named export
import fs from 'node:fs';

const IDENT = /^[A-Za-z_$][\w$]*/;

/** @returns {{ named: string[], defaultMembers: string[], statics: Record<string, string[]>, instance: Record<string, string[]> }} */
export function documentedApi(readme = fs.readFileSync(new URL('../README.md', import.meta.url), 'utf8')) {
  const named = new Set();
  const defaultMembers = new Set();
  const statics = {};
  const instance = {};
  const add = (map, key, name) => (map[key] ??= new Set()).add(name);

  const section = /^## API\n([\s\S]*?)(?=^## )/m.exec(readme);
  if (!section) throw new Error('README.md has no "## API" section');
  for (const line of section[1].split('\n')) {
    if (!line.startsWith('|') || /^\|\s*(---|\|)/.test(line.replace(/ /g, ''))) continue;
    const [first = '', second = ''] = line.split(/(?<!\\)\|/).slice(1, 3);
    const firstSpans = spans(first);
    let owner = null;
    if (firstSpans.length === 0) {
      if (first.trim() && first.trim() !== 'errors') owner = 'Ring';
    }
    for (const span of firstSpans) {
      const qualified = /^([A-Za-z_$][\w$]*)\.([A-Za-z_$][\w$]*)/.exec(span);
      if (qualified && qualified[1] === 'xway') {
        defaultMembers.add(qualified[2]);
        named.add(qualified[2]);
      } else if (qualified && /^[A-Z]/.test(qualified[1])) {
        named.add(qualified[1]);
        add(statics, qualified[1], qualified[2]);
        owner = qualified[1];
      } else {
        const name = IDENT.exec(span)?.[0];
        if (name) named.add(name);
      }
    }
    for (const span of spans(second)) {
      const qualified = /^([A-Z][\w$]*)\.([A-Za-z_$][\w$]*)/.exec(span);
      if (qualified && owner === qualified[1]) add(statics, owner, qualified[2]);
      else if (/^[A-Z][a-z][A-Za-z]*$/.test(span)) named.add(span);
      else if (owner && /^[a-z][\w$]*(\(|$| )/.test(span)) add(instance, owner, IDENT.exec(span)[0]);
    }
  }
  for (const m of readme.matchAll(/`xway\.([A-Za-z_$][\w$]*)/g)) {
    defaultMembers.add(m[1]);
    named.add(m[1]);
  }
  const lists = (map) => Object.fromEntries(Object.entries(map).map(([k, v]) => [k, [...v].sort()]));
  return { named: [...named].sort(), defaultMembers: [...defaultMembers].sort(), statics: lists(statics), instance: lists(instance) };
}

function spans(cell) {
  return [...cell.matchAll(/`([^`]+)`/g)].map((m) => m[1].trim());
}

if (process.argv[1] && new URL(import.meta.url).pathname === process.argv[1]) {
  console.log(JSON.stringify(documentedApi(), null, 2));
}
