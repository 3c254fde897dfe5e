// For the most confused pair with uncertain prototypes (final checkpoint): which prototypes are uncertain, and which misclassified samples contain them?
// question: 9
// returns: a:int, b:int, confusions:int, confusionRank:int, prototype:int, name:str, flips:int, flipSteps:list[int], score:float, q:float, samples:list[int]
// empty: No confused pair has an uncertain prototype (or nothing is confused at the final checkpoint).
MATCH (x:Class {runId: $runId})-[c:CONFUSED_AS]->(y:Class)
WITH CASE WHEN x.index < y.index THEN x.index ELSE y.index END AS a,
     CASE WHEN x.index < y.index THEN y.index ELSE x.index END AS b, c.counts[size(c.counts) - 1] AS n
WITH a, b, sum(n) AS confusions WHERE confusions > 0
WITH a, b, confusions ORDER BY confusions DESC, a, b
WITH collect([a, b, confusions]) AS ranked
MATCH (:Class {runId: $runId})<-[u:UNCERTAIN_BETWEEN]-(:Prototype)
WITH ranked, collect(DISTINCT [u.a, u.b]) AS uncertain
WITH ranked, [i IN range(0, size(ranked) - 1) WHERE [ranked[i][0], ranked[i][1]] IN uncertain][0] AS i
WHERE i IS NOT NULL
WITH ranked[i][0] AS a, ranked[i][1] AS b, ranked[i][2] AS confusions, i + 1 AS confusionRank
OPTIONAL MATCH (c:Class {runId: $runId})<-[:LABELLED_AS]-(s:Sample {split: 'probe', correct: false})
WHERE c.index IN [a, b]
WITH a, b, confusions, confusionRank, s ORDER BY s.sampleId
WITH a, b, confusions, confusionRank, collect(s) AS wrong
MATCH (:Class {runId: $runId, index: a})<-[u:UNCERTAIN_BETWEEN]-(p:Prototype)
WHERE u.a = a AND u.b = b
RETURN a, b, confusions, confusionRank, p.index AS prototype, p.name AS name, u.flips AS flips,
       u.flipSteps AS flipSteps, u.score AS score, u.q AS q, [s IN wrong WHERE p.index IN s.prototypes | s.sampleId] AS samples
ORDER BY score DESC, prototype
