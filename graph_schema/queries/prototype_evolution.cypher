// How did prototype k's β toward each class evolve over the steps?
// question: 7
// param: k:int — the prototype index
// param: scope:step|class=step — 'step': the fit on all samples; 'class': each class's own fit
// returns: cls:int, name:str, steps:list[int], betas:list[float], zs:list[float], finalBeta:float, beta:float, q:float?
// empty: No β is stored for this prototype.
MATCH (p:Prototype {runId: $runId, index: $k})-[d:DRIVES {scope: $scope}]->(c:Class)
RETURN c.index AS cls, c.name AS name, range(0, size(d.betas) - 1) AS steps, d.betas AS betas, d.zs AS zs,
       d.betas[size(d.betas) - 1] AS finalBeta, d.beta AS beta, d.q AS q
ORDER BY cls
