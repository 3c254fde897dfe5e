// How did prototype k's β toward each class evolve over the steps?
// question: 7
// param: k:int — the prototype index
// param: scope:step|class=step — 'step': the fit on all samples; 'class': each class's own fit
// returns: cls:int, name:str, steps:list[int], betas:list[float], finalBeta:float
// empty: No β is stored for this prototype.
MATCH (p:Prototype {runId: $runId, index: $k})-[d:DRIVES {scope: $scope}]->(c:Class)
WITH c, d ORDER BY d.step
WITH c, collect(d.step) AS steps, collect(d.beta) AS betas
RETURN c.index AS cls, c.name AS name, steps, betas, betas[size(betas) - 1] AS finalBeta
ORDER BY cls
