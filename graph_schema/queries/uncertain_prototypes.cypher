// Which prototypes are uncertain between classes a and b (their β keeps flipping), and over which steps?
// question: 8
// param: a:int — one class index
// param: b:int — the other class index
// returns: prototype:int, name:str, flips:int, flipSteps:list[int], significantSteps:list[int], signs:list[int], magnitude:float, score:float, p:float, q:float, recurrence:float?
// empty: No uncertain prototype for this pair: only the most confused pairs at the final checkpoint are examined (config.confused_pairs), and a prototype must flip between significant steps more often than noise does (q ≤ config.fdr_q).
WITH CASE WHEN $a < $b THEN $a ELSE $b END AS lo, CASE WHEN $a < $b THEN $b ELSE $a END AS hi
MATCH (c:Class {runId: $runId, index: lo})<-[u:UNCERTAIN_BETWEEN]-(p:Prototype)
WHERE u.a = lo AND u.b = hi
RETURN p.index AS prototype, p.name AS name, u.flips AS flips, u.flipSteps AS flipSteps,
       u.significantSteps AS significantSteps, u.signs AS signs, u.magnitude AS magnitude, u.score AS score, u.p AS p,
       u.q AS q, u.recurrence AS recurrence
ORDER BY score DESC, prototype
