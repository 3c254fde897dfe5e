// Which learning-pattern groups exist for class c at step t, how large, and characterised by which prototypes?
// question: 11
// param: cls:int — the class index
// param: step:int — the step t (checkpoint t → t+1)
// returns: group:int, name:str, size:int, noise:bool, topPrototypes:list[int], topBetas:list[float]
// empty: No group is stored for this class and step.
MATCH (g:Group {runId: $runId, cls: $cls, step: $step})
RETURN g.group AS group, g.name AS name, g.size AS size, g.noise AS noise, g.topPrototypes AS topPrototypes,
       [k IN g.topPrototypes | g.betas[k]] AS topBetas
ORDER BY group
