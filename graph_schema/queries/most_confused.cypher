// For the most confused pair with uncertain prototypes (final checkpoint): which prototypes are uncertain (training dynamics, β), which misclassified samples contain them, and which prototypes' deletion turns the pair's confusions back (confusers: reliance, final model)?
// question: 9
// returns: a:int, b:int, confusions:int, confusionRank:int, prototype:int, name:str, flips:int, flipSteps:list[int], score:float, q:float, samples:list[int], relation:str, confuserRelation:str?, confusers:list[int], confuserNames:list[str], confuserEffects:list[float], confuserQs:list[float], confuserClaimed:list[bool], confuserFormedAt:list[int], confuserSetPercentile:float?, confuserSetTurnedBack:int?, confuserSamples:int?
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
OPTIONAL MATCH (:Class {runId: $runId, index: a})<-[f:CONFUSES]-(fp:Prototype)
WHERE f.a = a AND f.b = b AND (f.claimed OR f.inTopSet)
WITH a, b, confusions, confusionRank, wrong, f, fp ORDER BY f.rank
WITH a, b, confusions, confusionRank, wrong, collect(CASE WHEN f IS NULL THEN null ELSE {k: fp.index, name: fp.name,
     effect: f.effect, q: f.q, claimed: f.claimed, formed: f.formedAt, pct: f.topSetPercentile,
     back: f.topSetTurnedBack, n: f.samples, rel: f.relation} END) AS confusers
MATCH (:Class {runId: $runId, index: a})<-[u:UNCERTAIN_BETWEEN]-(p:Prototype)
WHERE u.a = a AND u.b = b
RETURN a, b, confusions, confusionRank, p.index AS prototype, p.name AS name, u.flips AS flips,
       u.flipSteps AS flipSteps, u.score AS score, u.q AS q, [s IN wrong WHERE p.index IN s.prototypes | s.sampleId] AS samples,
       'training dynamics (β)' AS relation,
       CASE WHEN size(confusers) = 0 THEN null ELSE confusers[0].rel END AS confuserRelation,
       [x IN confusers | x.k] AS confusers, [x IN confusers | x.name] AS confuserNames,
       [x IN confusers | x.effect] AS confuserEffects, [x IN confusers | x.q] AS confuserQs,
       [x IN confusers | x.claimed] AS confuserClaimed, [x IN confusers | x.formed] AS confuserFormedAt,
       CASE WHEN size(confusers) = 0 THEN null ELSE confusers[0].pct END AS confuserSetPercentile,
       CASE WHEN size(confusers) = 0 THEN null ELSE confusers[0].back END AS confuserSetTurnedBack,
       CASE WHEN size(confusers) = 0 THEN null ELSE confusers[0].n END AS confuserSamples
ORDER BY score DESC, prototype
