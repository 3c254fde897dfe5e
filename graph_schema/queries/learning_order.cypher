// In what order did the model separate the class pairs (pairs ever confused above threshold, by separation checkpoint)?
// question: 6
// returns: rank:int, a:int, b:int, nameA:str, nameB:str, separatedAt:int?, peakConfusion:int, finalConfusion:int, confusionByCheckpoint:list[int]
// empty: No class pair was ever confused above its threshold.
MATCH (a:Class {runId: $runId})-[s:SEPARATED_FROM]->(b:Class)
WHERE s.order IS NOT NULL
RETURN s.order + 1 AS rank, a.index AS a, b.index AS b, a.name AS nameA, b.name AS nameB,
       s.checkpoint AS separatedAt, s.peakConfusion AS peakConfusion, s.finalConfusion AS finalConfusion,
       s.confusionByCheckpoint AS confusionByCheckpoint
ORDER BY rank
