-- PostgreSQL's own cost of the ingest insert, without microfab: 100,000 staged rows inserted
-- into a copy of the events table, first with its primary key alone, then with each index added.
-- Run in a store made by microfab (any, it only copies the events table's shape):
--   psql -h 127.0.0.1 -U postgres -d STORE -f bench/ingest_pg_ceiling.sql
-- (docs/benchmarks.md, "Where the ingest time goes").
\timing on
create temp table st (n int, id text, ts timestamptz, machine text, stream text, body text, digest text);
insert into st select g, 'p-'||g, now() + g * interval '1 ms', 'bench/plant/line1/cell1/machine-'||(g%10), 'telemetry', '{"metrics": {"sent": 1765112400.123, "value": '||(g%97)||'}}', md5(g::text)||md5(g::text) from generate_series(1,100000) g;
create table ev2 (like events including defaults);
alter table ev2 alter column seq drop default;
create sequence ev2_seq;
alter table ev2 alter column seq set default nextval('ev2_seq');
alter table ev2 add primary key (seq);
insert into ev2 (id, ts, ingest_ts, machine, stream, schema_version, body, digest) select id, ts, now(), machine, stream, 1, body::json, digest from st order by n \g /dev/null
truncate ev2;
alter table ev2 add constraint uq2 unique (id);
insert into ev2 (id, ts, ingest_ts, machine, stream, schema_version, body, digest) select id, ts, now(), machine, stream, 1, body::json, digest from st order by n on conflict (id) do nothing \g /dev/null
truncate ev2;
create index on ev2 (ts, id);
insert into ev2 (id, ts, ingest_ts, machine, stream, schema_version, body, digest) select id, ts, now(), machine, stream, 1, body::json, digest from st order by n on conflict (id) do nothing \g /dev/null
truncate ev2;
create index on ev2 (machine, stream, ts);
insert into ev2 (id, ts, ingest_ts, machine, stream, schema_version, body, digest) select id, ts, now(), machine, stream, 1, body::json, digest from st order by n on conflict (id) do nothing \g /dev/null
truncate ev2;
insert into ev2 (id, ts, ingest_ts, machine, stream, schema_version, body, digest) select id, ts, now(), machine, stream, 1, body::json, digest from st order by n on conflict (id) do nothing \g /dev/null
drop table ev2;
