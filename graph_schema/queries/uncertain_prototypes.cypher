// Which prototypes are uncertain between classes a and b (their β keeps flipping), and over which steps?
// question: 8
// param: a:int — one class index
// param: b:int — the other class index
// returns: prototype:int, name:str, flips:int, flipSteps:list[int], magnitude:float, score:float
// empty: No uncertain prototype for this pair: only the most confused pairs at the final checkpoint are examined (config.confused_pairs), and a prototype must flip at least config.uncertain_min_flips times.
WITH CASE WHEN $a < $b THEN $a ELSE $b END AS lo, CASE WHEN $a < $b THEN $b ELSE $a END AS hi
MATCH (c:Class {runId: $runId, index: lo})<-[u:UNCERTAIN_BETWEEN]-(p:Prototype)
WHERE u.a = lo AND u.b = hi
RETURN p.index AS prototype, p.name AS name, u.flips AS flips, u.flipSteps AS flipSteps, u.magnitude AS magnitude,
       u.score AS score
ORDER BY score DESC, prototype
