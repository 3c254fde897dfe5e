// In what order did the model separate the class pairs (pairs ever confused above threshold, by separation checkpoint), and from when did β separate them (training dynamics) and the final model's margin rely on prototypes (reliance)?
// question: 6
// returns: rank:int, a:int, b:int, nameA:str, nameB:str, separatedAt:int?, peakConfusion:int, finalConfusion:int, confusionByCheckpoint:list[int], betaSeparatedAt:int?, betaRelation:str, marginReliedAt:int?, marginRelation:str
// empty: No class pair was ever confused above its threshold.
MATCH (a:Class {runId: $runId})-[s:SEPARATED_FROM]->(b:Class)
WHERE s.order IS NOT NULL
OPTIONAL MATCH (:Class {runId: $runId})<-[sep:SEPARATES]-(:Prototype)
WHERE sep.a = a.index AND sep.b = b.index
WITH a, b, s, min(sep.firstStep) + 1 AS betaSeparatedAt
OPTIONAL MATCH (:Class {runId: $runId})<-[m:MARGIN_RELIES_ON]-(:Prototype)
WHERE m.a = a.index AND m.b = b.index AND m.claimed
WITH a, b, s, betaSeparatedAt, min(m.formedAt) AS marginReliedAt
RETURN s.order + 1 AS rank, a.index AS a, b.index AS b, a.name AS nameA, b.name AS nameB,
       s.checkpoint AS separatedAt, s.peakConfusion AS peakConfusion, s.finalConfusion AS finalConfusion,
       s.confusionByCheckpoint AS confusionByCheckpoint, betaSeparatedAt,
       'training dynamics (β): the first checkpoint of a SEPARATES window' AS betaRelation, marginReliedAt,
       'reliance, final model: the first formation step of a claimed MARGIN_RELIES_ON edge' AS marginRelation
ORDER BY rank
