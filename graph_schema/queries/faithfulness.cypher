// Does the final model use what the claims name? Deletion tests of each claim group against matched random prototype sets.
// question: 15
// param: kind:all|drivers|separators|uncertain=all — which claim groups
// returns: kind:str, cls:int, name:str, other:int?, prototypes:list[int], samples:int, effect:float, randomMedian:float, percentile:float, p:float, staticEffect:float?, staticPercentile:float?
// empty: No deletion test is stored: the run had faithfulness off (I2XConfig.faithfulness) or no claim to test.
MATCH (t:DeletionTest {runId: $runId})-[:TESTS]->(c:Class)
WHERE $kind = 'all' OR t.kind = $kind
RETURN t.kind AS kind, c.index AS cls, c.name AS name, t.other AS other, t.prototypes AS prototypes,
       t.samples AS samples, t.effect AS effect, t.randomMedian AS randomMedian, t.percentile AS percentile,
       t.p AS p, t.staticEffect AS staticEffect, t.staticPercentile AS staticPercentile
ORDER BY kind, cls, other
