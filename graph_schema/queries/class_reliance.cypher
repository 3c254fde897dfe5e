// What does the final model rely on for class c (deleting each prototype on held-out samples), and from which checkpoint on?
// question: 16
// param: cls:int — the class index
// param: claimed:bool=true — only the claimed edges (q ≤ the run's fdr_q and the effect beats the random cells' by its minimum); false: every tested prototype
// param: top:int=10 — at most this many prototypes
// returns: rank:int, prototype:int, name:str, relation:str, effect:float, randomEffect:float, p:float, q:float, half:str, samples:int, claimed:bool, formedAt:int?, effectByCheckpoint:list[float]?
// empty: No prototype's deletion drops this class's confidence on held-out samples beyond random cells (or the reliance check was not run: i2x run runs it; checks.run_reliance on a saved run).
MATCH (c:Class {runId: $runId, index: $cls})<-[r:RELIES_ON]-(p:Prototype)
WHERE r.claimed OR NOT $claimed
RETURN r.rank AS rank, p.index AS prototype, p.name AS name, r.relation AS relation, r.effect AS effect,
       r.randomEffect AS randomEffect, r.p AS p, r.q AS q, r.half AS half, r.samples AS samples,
       r.claimed AS claimed, r.formedAt AS formedAt, r.effects AS effectByCheckpoint
ORDER BY rank ASC, prototype ASC LIMIT $top
