# Summarizes scripts/bench_rounds.sh output: per label, req/s, the per-round ratio to a reference
# label (default nginx) and its median, and server CPU per request.
import collections,statistics,sys
rows=[l.split() for l in open(sys.argv[1]) if len(l.split())==4]
ref=sys.argv[2] if len(sys.argv)>2 else 'nginx'
by=collections.defaultdict(dict)
labels=[]
for r,l,rps,c in rows:
    by[int(r)][l]=(float(rps), float(c)*1000/(float(rps)*3))
    if l not in labels: labels.append(l)
for l in labels:
    rat=[by[r][l][0]/by[r][ref][0] for r in by if l in by[r]]
    cpu=[by[r][l][1]/by[r][ref][1] for r in by if l in by[r]]
    print(f"{l:8} req/s median {statistics.median([by[r][l][0] for r in by if l in by[r]]):9.0f}  vs {ref} per round {' '.join(f'{x:.2f}' for x in rat)}  median {statistics.median(rat):.2f}x  CPU/req {statistics.median([by[r][l][1] for r in by if l in by[r]]):.2f} us ({statistics.median(cpu):.2f}x)")
