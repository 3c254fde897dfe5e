// Lint Cypher statements with Neo4j's own parser and semantic analysis (@neo4j-cypher/language-support).
//
//   node tools/cypher-lint/lint.mjs statements.json      (or the JSON on stdin)
//
// Input: {"schema": {labels, relationshipTypes, propertyKeys}, "statements": [{source, cypher, parameters}]},
// as written by statements.py. Every statement is linted as Cypher 5, against the declared schema, Neo4j's
// built-in functions (no APOC) and no procedures. `parameters` declares a statement's parameters; null means
// they come from Python call sites, and only "parameter not defined" errors are then ignored. Any error or
// warning (deprecations included) fails the run (exit code 1).
import { readFileSync } from 'node:fs';
import { lintCypherQuery, isNotParamError, testData } from '@neo4j-cypher/language-support';

const VERSION = 'CYPHER 5';
const SEVERITY = { 1: 'error', 2: 'warning' };

// Neo4j 5's built-in functions, from the SHOW FUNCTIONS listing the package ships; plugin (APOC) ones dropped.
const builtIns = Object.fromEntries(
  Object.entries(testData.mockSchema.functions[VERSION]).filter(([, fn]) => fn.isBuiltIn),
);

const input = JSON.parse(readFileSync(process.argv[2] ?? 0, 'utf8'));
let problems = 0;
for (const { source, cypher, parameters } of input.statements) {
  const schema = {
    ...input.schema,
    defaultLanguage: VERSION,
    functions: { [VERSION]: builtIns },
    procedures: { [VERSION]: {} },
    parameters: parameters ?? {},
  };
  const found = [];
  const version = cypher.match(/^\s*CYPHER\s+(\d+)/i);
  if (version && version[1] !== '5') found.push({ severity: 1, message: `CYPHER ${version[1]}: the project speaks Cypher 5` });
  for (const d of lintCypherQuery(cypher, schema).diagnostics) {
    if (d.severity > 2 || (parameters === null && !isNotParamError(d))) continue;
    found.push(d);
  }
  for (const d of found) {
    problems += 1;
    const line = d.range ? d.range.start.line : 0;
    const where = d.range ? `:${line + 1}:${d.range.start.character + 1}` : '';
    console.log(`${source}${where}: ${SEVERITY[d.severity]}: ${d.message}\n    ${cypher.split('\n')[line].trim()}`);
  }
}
const verdict = problems ? `${problems} problem(s)` : 'no problems';
console.log(`cypher-lint: ${input.statements.length} statements checked as ${VERSION} by Neo4j's analyser: ${verdict}`);
process.exit(problems ? 1 : 0);
