import { PGlite } from '@electric-sql/pglite'
import { vector } from '@electric-sql/pglite-pgvector'
let t=Date.now()
const a = await PGlite.create('memory://', { extensions: { vector } })
await a.exec('create extension vector; create table t(x int); insert into t values (42)')
const dump = await a.dumpDataDir('none'); console.log('create+dump', Date.now()-t, dump.size); await a.close()
t=Date.now()
const b = await PGlite.create('memory://', { extensions: { vector }, loadDataDir: dump })
console.log('load mem', Date.now()-t, (await b.query('select * from t')).rows)
t=Date.now()
const c = await PGlite.create('/tmp/probe-load-'+Date.now(), { extensions: { vector }, loadDataDir: dump })
console.log('load fs', Date.now()-t, (await c.query('select * from t')).rows)
