// What does the final model rely on to tell classes a and b apart (margin reliance), and which prototypes turn its a↔b confusions back (confusers), from which checkpoint on?
// question: 17
// param: a:int — one class index
// param: b:int — the other class index
// param: claimed:bool=false — only the claimed edges (q ≤ the run's fdr_q and the effect beats the random cells' by its pair minimum); false: each group's top set and its claimed edges
// returns: kind:str, prototype:int, name:str, favours:int?, against:int?, relation:str, measure:str, effect:float, randomEffect:float, p:float, q:float, rank:int, half:str, samples:int, claimed:bool, formedAt:int?, inTopSet:bool, topSetPercentile:float?, topSetTurnedBack:int?
// empty: No margin reliance or confuser edge for this pair: only the pairs with separators or among the run's most confused are tested, confusers need enough misclassified samples to cross-fit (the run's skipped list says which were not), and the reliance check must have run (i2x run runs it; checks.run_reliance on a saved run).
WITH CASE WHEN $a < $b THEN $a ELSE $b END AS lo, CASE WHEN $a < $b THEN $b ELSE $a END AS hi
MATCH (c:Class {runId: $runId})<-[r:MARGIN_RELIES_ON|CONFUSES]-(p:Prototype)
WHERE r.a = lo AND r.b = hi AND (type(r) = 'MARGIN_RELIES_ON' OR c.index = lo)
  AND (r.claimed OR (NOT $claimed AND r.inTopSet))
WITH p, r, CASE WHEN type(r) = 'MARGIN_RELIES_ON' THEN 'margin' ELSE 'confuser' END AS kind,
     CASE WHEN type(r) = 'MARGIN_RELIES_ON' THEN c.index ELSE null END AS favours
RETURN kind, p.index AS prototype, p.name AS name, favours, r.against AS against, r.relation AS relation, r.measure AS measure,
       r.effect AS effect, r.randomEffect AS randomEffect, r.p AS p, r.q AS q, r.rank AS rank, r.half AS half,
       r.samples AS samples, r.claimed AS claimed, r.formedAt AS formedAt, r.inTopSet AS inTopSet,
       r.topSetPercentile AS topSetPercentile, r.topSetTurnedBack AS topSetTurnedBack
ORDER BY kind DESC, favours, rank, prototype
