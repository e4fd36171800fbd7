# Medians of bench/run.sh's raw runs (tab-separated, see run.sh). mode=lines: one table row per
# (scenario, target); mode=ratios: gatehouse against the cheapest anchor per scenario; mode=log:
# the cost of the timing log (X+log minus X) for gatehouse and HAProxy. Runs marked noisy are
# left out unless every run of the line is.
function ms(v) { # wrk/h2load latency ("812.00us", "2.61ms", "1.20s") in ms
  if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000
  return v + 0
}
function median(list,   n, v, i, j, t) {
  n = split(list, v, " ")
  for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (v[j] + 0 < v[i] + 0) { t = v[i]; v[i] = v[j]; v[j] = t }
  return n ? v[int((n + 1) / 2)] : "-"
}
function spread(list,   n, v, i, lo, hi) {
  n = split(list, v, " "); lo = hi = v[1]
  for (i = 2; i <= n; i++) { if (v[i] + 0 < lo + 0) lo = v[i]; if (v[i] + 0 > hi + 0) hi = v[i] }
  return hi - lo
}
$1 ~ /^slow/ {
  k = $1 SUBSEP $2
  if (!(k in sseen2)) { sseen2[k] = 1; slorder[++nsl] = k }
  sbefore[k] = sbefore[k] " " $4; sconns[k] = sconns[k] " " $7; speak[k] = speak[k] " " $13; safter[k] = safter[k] " " $15
  next
}
$1 ~ /^idle/ {
  k = $1 SUBSEP $2
  if (!(k in iseen)) { iseen[k] = 1; iorder[++ni] = k }
  ikib[k] = ikib[k] " " $4; iconns[k] = iconns[k] " " $7; irss[k] = irss[k] " " $13; ileft[k] = ileft[k] " " $15
  next
}
{
  k = $1 SUBSEP $2
  if (!(k in seen)) { seen[k] = 1; order[++nk] = k; if (!($1 in sseen)) { sseen[$1] = 1; sorder[++ns] = $1 } }
  for (pass = 0; pass < 2; pass++) {
    if (pass == 1 && $12 != 0) continue
    kk = k SUBSEP pass
    us[kk] = us[kk] " " $4; ous[kk] = ous[kk] " " $5; ra[kk] = ra[kk] " " $6; rps[kk] = rps[kk] " " $7
    p50[kk] = p50[kk] " " ms($8); p99[kk] = p99[kk] " " ms($9); hwm[kk] = hwm[kk] " " $13; cnt[kk]++
    if ($15 != "" && $15 != "-") rcv[kk] = rcv[kk] " " $15
  }
}
function pick(k) { return (cnt[k SUBSEP 1] > 0) ? k SUBSEP 1 : k SUBSEP 0 }
END {
  if (mode == "slow") {
    for (i = 1; i <= nsl; i++) {
      k = slorder[i]; split(k, a, SUBSEP)
      printf "| %s | %s | %s | %s | %s | %s |\n", a[1], a[2], median(sconns[k]), median(sbefore[k]),
        median(speak[k]), median(safter[k])
    }
  } else if (mode == "idle") {
    for (i = 1; i <= ni; i++) {
      k = iorder[i]; split(k, a, SUBSEP)
      printf "| %s | %s | %s | %s | %.2f | %s | %s |\n", a[1], a[2], median(iconns[k]), median(ikib[k]),
        spread(ikib[k]), median(irss[k]), median(ileft[k])
    }
  } else if (mode == "lines") {
    for (i = 1; i <= nk; i++) {
      k = order[i]; split(k, a, SUBSEP); kk = pick(k)
      printf "| %s | %s | %s | %.2f | %s | %s | %.0f | %.2fms | %.2fms | %s | %d of %d |\n", a[1], a[2],
        median(us[kk]), spread(us[kk]), median(ous[kk]), median(ra[kk]), median(rps[kk]),
        median(p50[kk]), median(p99[kk]), median(hwm[kk]), cnt[kk], cnt[k SUBSEP 0]
    }
  } else if (mode == "log") {
    for (i = 1; i <= 2; i++) {
      t = (i == 1) ? "gatehouse" : "haproxy"
      off = "log" SUBSEP t; on = "log" SUBSEP t "+log"
      if (!(off in seen) || !(on in seen)) continue
      a0 = median(us[pick(off)]) + 0; a1 = median(us[pick(on)]) + 0
      cost[t] = a1 - a0
      printf "| %s | %.2f | %.2f | %.2f | %s |\n", t, a0, a1, a1 - a0, median(rcv[pick(on)])
    }
    if (("haproxy" in cost) && cost["haproxy"] > 0)
      printf "\ngatehouse's log costs %.2f× HAProxy's.\n", cost["gatehouse"] / cost["haproxy"]
  } else {
    for (i = 1; i <= ns; i++) {
      s = sorder[i]; best = ""; bestus = 0
      for (j = 1; j <= nk; j++) {
        split(order[j], a, SUBSEP); if (a[1] != s || a[2] ~ /^gatehouse/ || a[2] == "origin") continue
        m = median(us[pick(order[j])]) + 0
        if (best == "" || m < bestus) { best = a[2]; bestus = m; bestp99 = median(p99[pick(order[j])]) }
      }
      g = s SUBSEP "gatehouse"
      if (!(g in seen) || best == "") continue
      gus = median(us[pick(g)]) + 0
      printf "| %s | %.2f | %s %.2f | %.2f | %.2fms | %.2fms |\n", s, gus, best, bestus,
        (bestus > 0 ? gus / bestus : 0), median(p99[pick(g)]), bestp99
    }
  }
}
