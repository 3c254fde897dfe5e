// Which prototypes do classes a and b both rely on (drivers of both)?
// question: 4
// param: a:int — one class index
// param: b:int — the other class index
// returns: prototype:int, name:str, betaA:float, betaB:float, qA:float, qB:float, firstStepA:int?, firstStepB:int?
// empty: The two classes have no driver in common.
MATCH (ca:Class {runId: $runId, index: $a})<-[da:KEY_DRIVER_OF]-(p:Prototype)-[db:KEY_DRIVER_OF]->(cb:Class {runId: $runId, index: $b})
RETURN p.index AS prototype, p.name AS name, da.beta AS betaA, db.beta AS betaB, da.q AS qA, db.q AS qB,
       da.firstStep AS firstStepA, db.firstStep AS firstStepB
ORDER BY betaA + betaB DESC, prototype
