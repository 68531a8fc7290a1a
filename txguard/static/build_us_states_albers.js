// Regenerates us_states_albers.json (run once at development time, not at run time):
//   node txguard/static/build_us_states_albers.js <us-atlas 3.0.1 dir> <topojson-client 3.1.0 dir> > txguard/static/us_states_albers.json
// Input: us-atlas's states-albers-10m.json, already projected to Albers USA (Alaska and Hawaii as insets)
// in planar screen units (975 x 610, y down). Output: each state's polygons keyed by its USPS code,
// every ring a flat [x0, y0, x1, y1, ...] list rounded to 0.1 unit (a pixel at that width).
const path = require("path");
const topojson = require(path.resolve(process.argv[3], "dist/topojson-client.js"));
const topology = require(path.resolve(process.argv[2], "states-albers-10m.json"));
const USPS = {
  "01": "AL", "02": "AK", "04": "AZ", "05": "AR", "06": "CA", "08": "CO", "09": "CT", "10": "DE", "11": "DC",
  "12": "FL", "13": "GA", "15": "HI", "16": "ID", "17": "IL", "18": "IN", "19": "IA", "20": "KS", "21": "KY",
  "22": "LA", "23": "ME", "24": "MD", "25": "MA", "26": "MI", "27": "MN", "28": "MS", "29": "MO", "30": "MT",
  "31": "NE", "32": "NV", "33": "NH", "34": "NJ", "35": "NM", "36": "NY", "37": "NC", "38": "ND", "39": "OH",
  "40": "OK", "41": "OR", "42": "PA", "44": "RI", "45": "SC", "46": "SD", "47": "TN", "48": "TX", "49": "UT",
  "50": "VT", "51": "VA", "53": "WA", "54": "WV", "55": "WI", "56": "WY",
};
const round = (v) => Math.round(v * 10) / 10;
function ring(points) {
  const flat = [];
  let last = null;
  for (const [x, y] of points) {
    const key = `${round(x)},${round(y)}`;
    if (key !== last) flat.push(round(x), round(y));
    last = key;
  }
  return flat;
}
const states = {};
for (const feature of topojson.feature(topology, topology.objects.states).features) {
  const code = USPS[feature.id];
  if (!code) throw new Error(`no USPS code for FIPS ${feature.id} (${feature.properties.name})`);
  const g = feature.geometry;
  const polygons = g.type === "Polygon" ? [g.coordinates] : g.coordinates;
  states[code] = { name: feature.properties.name, fips: feature.id, polygons: polygons.map((p) => p.map(ring)) };
}
const sorted = Object.fromEntries(Object.keys(states).sort().map((k) => [k, states[k]]));
process.stdout.write(JSON.stringify({
  source: "us-atlas 3.0.1 states-albers-10m.json (ISC, Mike Bostock); US Census Bureau cartographic boundary files (public domain)",
  projection: "Albers USA, screen units 975 x 610, y down",
  bbox: topology.bbox.map(round),
  states: sorted,
}) + "\n");
