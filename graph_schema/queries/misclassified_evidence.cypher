// For a misclassified sample: which of its prototypes push toward the wrong class, and how salient are they?
// question: 13
// param: sample:int — the sample id of a sample misclassified at the final checkpoint
// returns: sample:int, label:int, predicted:int, prototype:int, name:str, positions:int, intensity:float, betaWrong:float, betaTrue:float, push:float
// empty: The sample is classified correctly at the final checkpoint, or none of its prototypes has a positive β toward the predicted class.
MATCH (s:Sample {runId: $runId, key: 'probe:' + toString($sample)})-[:PREDICTED_AS]->(w:Class)
WHERE s.correct = false
MATCH (s)-[:LABELLED_AS]->(t:Class)
MATCH (s)-[c:CONTAINS]->(p:Prototype)
MATCH (p)-[dw:DRIVES {scope: 'step'}]->(w)
WITH s, t, w, c, p, avg(dw.beta) AS betaWrong
MATCH (p)-[dt:DRIVES {scope: 'step'}]->(t)
WITH s, t, w, c, p, betaWrong, avg(dt.beta) AS betaTrue
WHERE betaWrong > 0
RETURN s.sampleId AS sample, t.index AS label, w.index AS predicted, p.index AS prototype, p.name AS name,
       c.positions AS positions, c.intensity AS intensity, betaWrong, betaTrue, c.intensity * betaWrong AS push
ORDER BY push DESC, prototype
