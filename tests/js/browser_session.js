// What Neo4j Browser does after its connect form, done with Neo4j's own JavaScript driver (the browser
// bundle, global `neo4j`) in a page of headless Chromium. Used by tests/store/test_bridge_browser.py.
//
// browserSession(plan) connects to plan.url as plan.user and, as Browser 5 does:
// - runs each background query of plan.startup ({query, database, mode}) in a managed read or write
//   transaction carrying transaction metadata;
// - picks the database from the first SHOW DATABASES that answers (the home one, else the default
//   one); a step whose database is "@chosen" runs on it;
// - sets each `:param NAME => literal` by running `RETURN literal` in a write transaction and keeping
//   the typed value;
// - runs each of plan.questions, plan.graph and plan.write as a user query: a write transaction with
//   every parameter.
// Returns a JSON string with every answer, or the error it got.

function plain(value) {
  if (neo4j.isInt(value)) {
    return neo4j.integer.inSafeRange(value) ? value.toNumber() : value.toString();
  }
  if (Array.isArray(value)) {
    return value.map(plain);
  }
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  }
  return value;
}

async function transaction(driver, { query, database, mode }, params, type) {
  const read = mode === "read";
  const session = driver.session({
    database: database || undefined,
    defaultAccessMode: read ? neo4j.session.READ : neo4j.session.WRITE,
  });
  const work = (tx) => tx.run(query, params);
  const config = { metadata: { type, app: "i2x-plugin-test" } };
  try {
    return { records: (read ? await session.executeRead(work, config) : await session.executeWrite(work, config)).records };
  } catch (e) {
    return { error: { code: e.code, message: e.message } };
  } finally {
    await session.close();
  }
}

function answer(outcome) {
  return outcome.error ? { error: outcome.error } : { rows: outcome.records.map((r) => plain(r.toObject())) };
}

async function browserSession(plan) {
  const driver = neo4j.driver(plan.url, neo4j.auth.basic(plan.user, plan.password));
  const out = { server: null, startup: [], database: null, params: {}, questions: {} };
  try {
    out.server = plain(await driver.getServerInfo());
    for (const step of plan.startup) {
      const where = step.database === "@chosen" ? { ...step, database: out.database } : step;
      const got = answer(await transaction(driver, where, {}, "system"));
      out.startup.push({ ...step, ...got });
      if (step.query === "SHOW DATABASES" && got.rows && !out.database) {
        out.database = (got.rows.find((d) => d.home) || got.rows.find((d) => d.default)).name;
      }
    }

    const user = (query) => ({ query, database: out.database, mode: "write" });
    const params = {};
    for (const [name, literal] of Object.entries(plan.params)) {
      const got = await transaction(driver, user(`RETURN ${literal} AS value`), {}, "user-direct");
      if (got.error) throw new Error(`:param ${name} => ${literal}: ${got.error.message}`);
      params[name] = got.records[0].get("value");
      out.params[name] = plain(params[name]);
    }
    for (const [name, cypher] of Object.entries(plan.questions)) {
      out.questions[name] = answer(await transaction(driver, user(cypher), params, "user-direct"));
    }
    out.graph = answer(await transaction(driver, user(plan.graph), params, "user-direct"));
    out.write = answer(await transaction(driver, user(plan.write), params, "user-direct"));
  } finally {
    await driver.close();
  }
  return JSON.stringify(out);
}
