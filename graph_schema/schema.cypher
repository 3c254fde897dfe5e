// The explanation graph's schema: one (runId, key) uniqueness constraint per label (the MERGE key of
// every write) and lookup indexes for the question catalog. Idempotent (IF NOT EXISTS); run by
// GraphStore.ensure_schema() before every write. Accepted by Neo4j 5 (Community too) and ArcadeDB.
CREATE CONSTRAINT i2x_run_key IF NOT EXISTS FOR (n:Run) REQUIRE (n.runId, n.key) IS UNIQUE;
CREATE CONSTRAINT i2x_checkpoint_key IF NOT EXISTS FOR (n:Checkpoint) REQUIRE (n.runId, n.key) IS UNIQUE;
CREATE CONSTRAINT i2x_class_key IF NOT EXISTS FOR (n:Class) REQUIRE (n.runId, n.key) IS UNIQUE;
CREATE CONSTRAINT i2x_prototype_key IF NOT EXISTS FOR (n:Prototype) REQUIRE (n.runId, n.key) IS UNIQUE;
CREATE CONSTRAINT i2x_group_key IF NOT EXISTS FOR (n:Group) REQUIRE (n.runId, n.key) IS UNIQUE;
CREATE CONSTRAINT i2x_sample_key IF NOT EXISTS FOR (n:Sample) REQUIRE (n.runId, n.key) IS UNIQUE;
CREATE CONSTRAINT i2x_curationset_key IF NOT EXISTS FOR (n:CurationSet) REQUIRE (n.runId, n.key) IS UNIQUE;
CREATE CONSTRAINT i2x_deletiontest_key IF NOT EXISTS FOR (n:DeletionTest) REQUIRE (n.runId, n.key) IS UNIQUE;
CREATE INDEX i2x_run_status IF NOT EXISTS FOR (n:Run) ON (n.status);
CREATE INDEX i2x_checkpoint_index IF NOT EXISTS FOR (n:Checkpoint) ON (n.runId, n.index);
CREATE INDEX i2x_class_index IF NOT EXISTS FOR (n:Class) ON (n.runId, n.index);
CREATE INDEX i2x_prototype_index IF NOT EXISTS FOR (n:Prototype) ON (n.runId, n.index);
CREATE INDEX i2x_group_step IF NOT EXISTS FOR (n:Group) ON (n.runId, n.step, n.cls);
CREATE INDEX i2x_sample_index IF NOT EXISTS FOR (n:Sample) ON (n.runId, n.index);
