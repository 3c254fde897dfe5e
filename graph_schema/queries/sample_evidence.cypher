// For a sample: which prototype holds its most salient region, and what is its β toward the predicted class?
// question: 1
// param: sample:int — the sample id (see Sample.sampleId; stored samples only)
// returns: sample:int, label:int, predicted:int, prototype:int, name:str, intensity:float, positions:int, beta:float, q:float?, betaByStep:list[float]
// empty: Only stored samples (exemplars, misclassified, uncertain-pair samples) can be asked about.
MATCH (s:Sample {runId: $runId, key: 'probe:' + toString($sample)})-[:PREDICTED_AS]->(pc:Class)
UNWIND range(0, size(s.prototypes) - 1) AS i
WITH s, pc, i ORDER BY s.prototypeIntensities[i] DESC, s.prototypes[i] ASC LIMIT 1
MATCH (p:Prototype {runId: $runId, index: s.prototypes[i]})-[d:DRIVES {scope: 'step'}]->(pc)
RETURN s.sampleId AS sample, s.label AS label, pc.index AS predicted, p.index AS prototype, p.name AS name,
       s.prototypeIntensities[i] AS intensity, s.prototypePositions[i] AS positions, d.beta AS beta, d.q AS q,
       d.betas AS betaByStep
