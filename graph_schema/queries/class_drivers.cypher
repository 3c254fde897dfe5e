// Which prototypes drive class c: at step t (the class's own fit), or over all steps when no step is given?
// question: 2
// param: cls:int — the class index
// param: step:int? — a step t (checkpoint t → t+1); omit for the step-weighted drivers over all steps
// param: top:int=5 — at most this many prototypes
// returns: rank:int, prototype:int, name:str, beta:float, firstStep:int?
// empty: No prototype has a positive β toward this class at this step.
MATCH (c:Class {runId: $runId, index: $cls})<-[d:KEY_DRIVER_OF|DRIVES]-(p:Prototype)
WHERE ($step IS NULL AND type(d) = 'KEY_DRIVER_OF')
   OR ($step IS NOT NULL AND type(d) = 'DRIVES' AND d.scope = 'class' AND $step >= 0)
WITH p, d, CASE WHEN $step IS NULL THEN d.beta ELSE d.betas[$step] END AS beta
WHERE $step IS NULL OR beta > 0
WITH p, d, beta ORDER BY beta DESC, p.index ASC LIMIT $top
WITH collect({p: p, d: d, beta: beta}) AS found
UNWIND range(0, size(found) - 1) AS i
RETURN i AS rank, found[i].p.index AS prototype, found[i].p.name AS name, found[i].beta AS beta,
       found[i].d.firstStep AS firstStep
ORDER BY rank
