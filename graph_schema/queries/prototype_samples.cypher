// Which samples contain prototype k, per class (the samples a curation on k removes)?
// question: 10
// param: k:int — the prototype index
// returns: cls:int, name:str, probeSamples:int, storedSamples:list[str], removedForCuration:int
// empty: The prototype does not exist in this run.
MATCH (p:Prototype {runId: $runId, index: $k})
OPTIONAL MATCH (s:Sample {runId: $runId})
WHERE $k IN s.prototypes
WITH p, s ORDER BY s.split, s.sampleId
WITH p, collect(s) AS containing
MATCH (c:Class {runId: $runId})
WITH p, c, [s IN containing WHERE s.label = c.index | s.key] AS stored
OPTIONAL MATCH (cs:CurationSet {runId: $runId})-[:REMOVES]->(t:Sample {split: 'train'})
WHERE $k IN cs.prototypes AND t.label = c.index
WITH p, c, stored, count(DISTINCT t) AS removed
RETURN c.index AS cls, c.name AS name, p.supportByClass[c.index] AS probeSamples, stored AS storedSamples,
       removed AS removedForCuration
ORDER BY cls
