// Which prototypes separate classes a and b, which class each favours, and from which checkpoint on (on average)?
// question: 5
// param: a:int — one class index
// param: b:int — the other class index
// returns: prototype:int, name:str, favours:int, against:int, firstStep:int, fromCheckpoint:int, steps:list[int], margin:float, z:float, p:float, q:float, recurrence:float?, pairSeparatedAt:int?
// empty: No prototype separates these classes: none has β[k, favoured] > 0 > β[k, other] on average from some step to the last more consistently than noise does (q ≤ config.fdr_q).
WITH CASE WHEN $a < $b THEN $a ELSE $b END AS lo, CASE WHEN $a < $b THEN $b ELSE $a END AS hi
MATCH (f:Class {runId: $runId})<-[s:SEPARATES]-(p:Prototype)
WHERE s.a = lo AND s.b = hi
OPTIONAL MATCH (:Class {runId: $runId, index: lo})-[sep:SEPARATED_FROM]->(:Class {runId: $runId, index: hi})
RETURN p.index AS prototype, p.name AS name, f.index AS favours, s.against AS against, s.firstStep AS firstStep,
       s.firstStep + 1 AS fromCheckpoint, s.steps AS steps, s.margin AS margin, s.z AS z, s.p AS p, s.q AS q,
       s.recurrence AS recurrence, sep.checkpoint AS pairSeparatedAt
ORDER BY firstStep, q, prototype, favours
