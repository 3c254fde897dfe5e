// For a misclassified sample: which of its prototypes push toward the wrong class, and how salient are they?
// question: 13
// param: sample:int — the sample id of a sample misclassified at the final checkpoint
// returns: sample:int, label:int, predicted:int, prototype:int, name:str, positions:int, intensity:float, betaWrong:float, qWrong:float?, betaTrue:float, push:float
// empty: The sample is classified correctly at the final checkpoint, or none of its prototypes has a positive β toward the predicted class.
MATCH (s:Sample {runId: $runId, key: 'probe:' + toString($sample)})-[:PREDICTED_AS]->(w:Class)
WHERE s.correct = false
MATCH (s)-[:LABELLED_AS]->(t:Class)
UNWIND range(0, size(s.prototypes) - 1) AS i
MATCH (p:Prototype {runId: $runId, index: s.prototypes[i]})-[dw:DRIVES {scope: 'step'}]->(w)
MATCH (p)-[dt:DRIVES {scope: 'step'}]->(t)
WITH s, t, w, p, dw, s.prototypePositions[i] AS positions, s.prototypeIntensities[i] AS intensity,
     dw.beta AS betaWrong, dt.beta AS betaTrue
WHERE betaWrong > 0
RETURN s.sampleId AS sample, t.index AS label, w.index AS predicted, p.index AS prototype, p.name AS name,
       positions, intensity, betaWrong, dw.q AS qWrong, betaTrue, intensity * betaWrong AS push
ORDER BY push DESC, prototype
