// What does prototype k look like: its highest-intensity samples and the regions (boxes) it covers there?
// question: 14
// param: k:int — the prototype index
// returns: rank:int, sample:int, label:int, prediction:int?, intensity:float, positions:int, box:list[int], imageUri:str?
// empty: The prototype has no exemplar in this run.
MATCH (s:Sample)-[x:EXEMPLAR_OF]->(p:Prototype {runId: $runId, index: $k})
RETURN x.rank AS rank, s.sampleId AS sample, s.label AS label, s.prediction AS prediction, x.intensity AS intensity,
       x.presence AS positions, x.box AS box, s.imageUri AS imageUri
ORDER BY rank
