// Two runs: which prototypes did each adopt for each class, in which order, and where do they diverge?
// question: 12
// param: other:str? — the run to compare with (default: the most recently written other complete run)
// returns: cls:int, name:str, runA:str, runB:str, orderA:list[int], orderB:list[int], orderAInB:list[int], diverges:bool, firstDivergence:int?
// empty: Comparing needs a second complete run in the graph.
MATCH (ra:Run {runId: $runId, key: $runId})
MATCH (rb:Run {status: 'complete'})
WHERE rb.runId <> $runId AND ($other IS NULL OR rb.runId = $other)
WITH ra, rb ORDER BY rb.updatedAt DESC LIMIT 1
// Prototypes are run-specific: match each of run A's to the run B prototype sharing most exemplar samples.
// (Plain WITH aggregation, no CALL subqueries: the same text runs on every Neo4j 5 and on ArcadeDB.)
OPTIONAL MATCH (pa:Prototype {runId: ra.runId})<-[:EXEMPLAR_OF]-(sa:Sample)
OPTIONAL MATCH (sb:Sample {runId: rb.runId, key: sa.key})-[:EXEMPLAR_OF]->(pb:Prototype)
WITH ra, rb, pa, pb, count(sb) AS shared ORDER BY pa.index, shared DESC, pb.index
WITH ra, rb, pa, collect(pb.index)[0] AS best
WITH ra, rb, collect(CASE WHEN best IS NULL THEN null ELSE [pa.index, best] END) AS matches
MATCH (ca:Class {runId: ra.runId})
MATCH (cb:Class {runId: rb.runId, index: ca.index})
OPTIONAL MATCH (p:Prototype)-[d:KEY_DRIVER_OF]->(ca)
WITH ra, rb, matches, ca, cb, p, d ORDER BY d.firstStep IS NULL, d.firstStep, d.beta DESC, p.index
WITH ra, rb, matches, ca, cb, collect(p.index) AS orderA
OPTIONAL MATCH (q:Prototype)-[e:KEY_DRIVER_OF]->(cb)
WITH ra, rb, matches, ca, orderA, q, e ORDER BY e.firstStep IS NULL, e.firstStep, e.beta DESC, q.index
WITH ra, rb, matches, ca, orderA, collect(q.index) AS orderB
WITH ra, rb, ca, orderA, orderB, [x IN orderA | head([m IN matches WHERE m[0] = x | m[1]])] AS orderAInB
WITH ra, rb, ca, orderA, orderB, orderAInB,
     [i IN range(0, CASE WHEN size(orderA) > size(orderB) THEN size(orderA) ELSE size(orderB) END - 1)
      WHERE coalesce(orderAInB[i], -1) <> coalesce(orderB[i], -1)] AS differ
RETURN ca.index AS cls, ca.name AS name, ra.runId AS runA, rb.runId AS runB, orderA, orderB, orderAInB,
       size(differ) > 0 AS diverges, head(differ) AS firstDivergence
ORDER BY cls
