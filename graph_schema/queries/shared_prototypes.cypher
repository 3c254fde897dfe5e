// Which prototypes are shared by all of class c, which specialise to some of its learning-pattern groups, and which groups?
// question: 3
// param: cls:int — the class index
// returns: prototype:int, name:str, kind:str, fraction:float, q:float, groups:list[list[int]]
// empty: No prototype has a significantly positive β in any of this class's tested learning-pattern groups.
MATCH (p:Prototype)-[s:SHARED_BY|SPECIALISED_TO]->(c:Class {runId: $runId, index: $cls})
RETURN p.index AS prototype, p.name AS name,
       CASE type(s) WHEN 'SHARED_BY' THEN 'shared' ELSE 'specialised' END AS kind, s.fraction AS fraction, s.q AS q,
       [i IN range(0, size(s.steps) - 1) | [s.steps[i], s.groups[i]]] AS groups
ORDER BY kind, fraction DESC, prototype
