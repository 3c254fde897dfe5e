// For a sample: which prototype holds its most salient region, and what is its β toward the predicted class?
// question: 1
// param: sample:int — the sample id (see Sample.sampleId; stored samples only)
// returns: sample:int, label:int, predicted:int, prototype:int, name:str, intensity:float, positions:int, beta:float, betaByStep:list[float]
// empty: Only stored samples (exemplars, misclassified, uncertain-pair samples) can be asked about.
MATCH (s:Sample {runId: $runId, key: 'probe:' + toString($sample)})-[c:CONTAINS]->(p:Prototype)
WITH s, c, p ORDER BY c.intensity DESC, p.index ASC LIMIT 1
MATCH (s)-[:PREDICTED_AS]->(pc:Class)
MATCH (p)-[d:DRIVES {scope: 'step'}]->(pc)
WITH s, c, p, pc, d ORDER BY d.step
WITH s, c, p, pc, collect(d.beta) AS betas
RETURN s.sampleId AS sample, s.label AS label, pc.index AS predicted, p.index AS prototype, p.name AS name,
       c.intensity AS intensity, c.positions AS positions,
       reduce(total = 0.0, b IN betas | total + b) / size(betas) AS beta, betas AS betaByStep
