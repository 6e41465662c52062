#!/usr/bin/env bash
# PostgreSQL baseline for the ledger's small-request workloads: a plpgsql transfer with a unique
# idempotency key, a balance check and two account updates in id order; fsync on; 10,000 accounts.
# Usage: benches/pg-baseline.sh CLIENTS TRANSFERS_PER_TX SECONDS   (prints one line: transfers/s p50 p99)
# Needs Debian's postgresql (benches/compare-postgres.sh installs it); runs its own cluster in a temp
# dir as user postgres. The same workload as the reference baseline the performance targets are
# judged by (`shared/tools/pg-baseline.sh` of the team's notes), kept here so the comparison runs
# from a checkout alone; keep the two alike.
set -euo pipefail
clients=${1:-64} per_tx=${2:-1} secs=${3:-20}
bin=$(ls -d /usr/lib/postgresql/*/bin | tail -1)
dir=$(mktemp -d -t pgbase.XXXX); chown postgres "$dir"
port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
as_pg() { runuser -u postgres -- "$@"; }
cleanup() { as_pg "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$dir"; }
trap cleanup EXIT
as_pg "$bin/initdb" -D "$dir/data" -A trust >/dev/null
as_pg "$bin/pg_ctl" -D "$dir/data" -o "-p $port -k $dir -c max_connections=200 -c shared_buffers=512MB -c synchronous_commit=on -c fsync=on" -l "$dir/log" start >/dev/null
psql() { as_pg "$bin/psql" -h "$dir" -p "$port" -v ON_ERROR_STOP=1 -q "$@"; }
psql -d postgres <<'SQL'
create table accounts(id bigint primary key, debits numeric not null default 0, credits numeric not null default 0);
create table transfers(key text primary key, debit bigint not null, credit bigint not null, amount numeric not null, ts timestamptz not null default now());
insert into accounts(id, credits) select g, 1000000000 from generate_series(1,10000) g;
create function transfer(k text, d bigint, c bigint, a numeric) returns int language plpgsql as $$
declare bal numeric;
begin
  insert into transfers(key, debit, credit, amount) values (k, d, c, a) on conflict (key) do nothing;
  if not found then return 1; end if;  -- replay: first result stands
  if d < c then
    select credits - debits into bal from accounts where id = d for update;
    perform 1 from accounts where id = c for update;
  else
    perform 1 from accounts where id = c for update;
    select credits - debits into bal from accounts where id = d for update;
  end if;
  if bal < a then raise exception 'exceeds_credits'; end if;
  update accounts set debits = debits + a where id = d;
  update accounts set credits = credits + a where id = c;
  return 0;
end $$;
create function transfer_batch(ks text[], ds bigint[], cs bigint[], a numeric) returns int language plpgsql as $$
declare i int; n int := 0;
begin
  perform 1 from accounts where id = any(ds || cs) order by id for update;  -- one lock order: no deadlocks
  for i in 1 .. array_length(ks, 1) loop
    n := n + transfer(ks[i], ds[i], cs[i], a);
  end loop;
  return n;
end $$;
create function transfer_random(n int) returns int language plpgsql as $$
declare ds bigint[]; cs bigint[]; ks text[];
begin  -- n random transfers with fresh keys, as a client batch would send them
  select array_agg(d), array_agg(case when c = d then c % 10000 + 1 else c end), array_agg(gen_random_uuid()::text)
    into ds, cs, ks
    from (select 1 + floor(random() * 10000)::bigint d, 1 + floor(random() * 10000)::bigint c from generate_series(1, n)) r;
  return transfer_batch(ks, ds, cs, 1.00);
end $$;
SQL
script=$dir/tx.sql
{ for i in $(seq 1 "$per_tx"); do
    echo "\\set d$i random(1, 10000)"; echo "\\set c$i random(1, 10000)"; echo "\\set k$i random(1, 1000000000000000)"
  done
  if [ "$per_tx" -eq 1 ]; then
    echo "select transfer(:client_id::text || '-' || :k1::text, :d1, case when :c1 = :d1 then (:c1 % 10000) + 1 else :c1 end, 1.00);"
  else  # one transaction of per_tx transfers, its accounts locked in id order first
    echo "select transfer_random($per_tx);"
  fi; } > "$script"
chown postgres "$script"
out=$(as_pg "$bin/pgbench" -h "$dir" -p "$port" -n -M prepared --max-tries=100 -c "$clients" -j 2 -T "$secs" -r -l --log-prefix="$dir/lat" -f "$script" postgres 2>&1)
tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' <<<"$out" | head -1)
lat=$(cat "$dir"/lat* | awk '{print $3}' | sort -n | awk '{a[NR]=$1} END {printf "p50 %.2f ms p99 %.2f ms", a[int(NR*0.5)]/1000, a[int(NR*0.99)]/1000}')
python3 - "$tps" "$per_tx" "$clients" "$lat" <<'PY'
import sys
tps, per, c, lat = float(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
print(f"postgres {c} clients x {per}: {tps*per:,.0f} transfers/s ({lat} per transaction)")
PY
