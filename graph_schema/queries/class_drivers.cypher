// Which prototypes drive class c: over all steps (the claims, with their evidence), or at step t (the class's own fit)?
// question: 2
// param: cls:int — the class index
// param: step:int? — a step t (checkpoint t → t+1); omit for the drivers over all steps
// param: top:int=5 — at most this many prototypes
// returns: rank:int, prototype:int, name:str, beta:float, z:float, q:float?, saliencyShare:float?, firstStep:int?, recurrence:float?
// empty: No prototype of this class passed the driver test (its β pooled over steps significantly positive), or none has a positive β at this step.
MATCH (c:Class {runId: $runId, index: $cls})<-[d:KEY_DRIVER_OF|DRIVES]-(p:Prototype)
WHERE ($step IS NULL AND type(d) = 'KEY_DRIVER_OF')
   OR ($step IS NOT NULL AND type(d) = 'DRIVES' AND d.scope = 'class' AND $step >= 0)
WITH p, d, CASE WHEN $step IS NULL THEN d.beta ELSE d.betas[$step] END AS beta,
     CASE WHEN $step IS NULL THEN d.z ELSE d.zs[$step] END AS z
WHERE $step IS NULL OR beta > 0
WITH p, d, beta, z ORDER BY coalesce(d.rank, 0) ASC, beta DESC, p.index ASC LIMIT $top
WITH collect({p: p, d: d, beta: beta, z: z}) AS found
UNWIND range(0, size(found) - 1) AS i
WITH i, found[i] AS f
RETURN i AS rank, f.p.index AS prototype, f.p.name AS name, f.beta AS beta, f.z AS z,
       CASE WHEN $step IS NULL THEN f.d.q ELSE null END AS q, f.d.saliencyShare AS saliencyShare,
       f.d.firstStep AS firstStep, f.d.recurrence AS recurrence
ORDER BY rank
