// For a sample: which prototype holds its most salient region, what is its β toward the predicted class, and which prototypes' deletion changes its prediction most?
// question: 1
// param: sample:int — the sample id (see Sample.sampleId; stored samples only)
// returns: sample:int, label:int, predicted:int, prototype:int, name:str, intensity:float, positions:int, beta:float, q:float?, betaByStep:list[float], deletionRelation:str?, runnerUp:int?, deletionPrototypes:list[int], deletionNames:list[str], deletionPredictedDrops:list[float], deletionRunnerUpDrops:list[float], deletionQs:list[float], deletionFormedAt:list[int]
// empty: Only stored samples (exemplars, misclassified, uncertain-pair samples) can be asked about.
MATCH (s:Sample {runId: $runId, key: 'probe:' + toString($sample)})-[:PREDICTED_AS]->(pc:Class)
UNWIND range(0, size(s.prototypes) - 1) AS i
WITH s, pc, i ORDER BY s.prototypeIntensities[i] DESC, s.prototypes[i] ASC LIMIT 1
MATCH (p:Prototype {runId: $runId, index: s.prototypes[i]})-[d:DRIVES {scope: 'step'}]->(pc)
OPTIONAL MATCH (s)-[m:DELETION_MOVES]->(mp:Prototype)
OPTIONAL MATCH (mp)-[r:RELIES_ON]->(pc)
WITH s, pc, i, p, d, m, mp, r ORDER BY m.rank ASC
WITH s, pc, i, p, d, collect(CASE WHEN m IS NULL THEN null ELSE {k: mp.index, name: mp.name, pd: m.predictedDrop,
     rd: m.runnerUpDrop, ru: m.runnerUp, q: r.q, f: r.formedAt} END) AS moved
RETURN s.sampleId AS sample, s.label AS label, pc.index AS predicted, p.index AS prototype, p.name AS name,
       s.prototypeIntensities[i] AS intensity, s.prototypePositions[i] AS positions, d.beta AS beta, d.q AS q,
       d.betas AS betaByStep,
       CASE WHEN size(moved) = 0 THEN null ELSE 'reliance, final model' END AS deletionRelation,
       CASE WHEN size(moved) = 0 THEN null ELSE moved[0].ru END AS runnerUp,
       [x IN moved | x.k] AS deletionPrototypes, [x IN moved | x.name] AS deletionNames,
       [x IN moved | x.pd] AS deletionPredictedDrops, [x IN moved | x.rd] AS deletionRunnerUpDrops,
       [x IN moved | x.q] AS deletionQs, [x IN moved | x.f] AS deletionFormedAt
