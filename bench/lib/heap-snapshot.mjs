/**
 * Reading a V8 `.heapsnapshot` (the format DevTools saves): the object graph, each node's retained
 * size (what would be freed with it: the sizes of the nodes it dominates), and the objects of a given
 * shape. Weak edges are left out of the graph, as DevTools does.
 */

/**
 * @param {any} snapshot the parsed snapshot JSON
 */
export function readHeapSnapshot(snapshot) {
  const { meta } = snapshot.snapshot;
  const nodeFields = meta.node_fields;
  const edgeFields = meta.edge_fields;
  const NF = nodeFields.length;
  const EF = edgeFields.length;
  const nodeTypes = meta.node_types[0];
  const edgeTypes = meta.edge_types[0];
  const { nodes, edges, strings } = snapshot;
  const TYPE = nodeFields.indexOf("type");
  const NAME = nodeFields.indexOf("name");
  const SELF = nodeFields.indexOf("self_size");
  const EDGE_COUNT = nodeFields.indexOf("edge_count");
  const E_TYPE = edgeFields.indexOf("type");
  const E_NAME = edgeFields.indexOf("name_or_index");
  const E_TO = edgeFields.indexOf("to_node");
  const n = nodes.length / NF;
  const firstEdge = new Uint32Array(n + 1);
  for (let i = 0; i < n; i++) firstEdge[i + 1] = firstEdge[i] + nodes[i * NF + EDGE_COUNT] * EF;
  const weak = edgeTypes.indexOf("weak");
  const elementType = edgeTypes.indexOf("element");
  const hiddenType = edgeTypes.indexOf("hidden");

  /** Outgoing edges of node `i` (index, not offset): `{ type, name, to }`. */
  function* edgesOf(i) {
    for (let e = firstEdge[i]; e < firstEdge[i + 1]; e += EF) {
      const t = edges[e + E_TYPE];
      const nameOrIndex = edges[e + E_NAME];
      yield {
        type: edgeTypes[t],
        name: t === elementType || t === hiddenType ? nameOrIndex : strings[nameOrIndex],
        to: edges[e + E_TO] / NF,
      };
    }
  }

  // Dominators by the iterative algorithm of Cooper, Harvey and Kennedy ("A Simple, Fast Dominance
  // Algorithm", 2001) over a reverse postorder from the root (node 0).
  const post = new Int32Array(n).fill(-1);
  const order = [];
  {
    const stack = [0];
    const next = new Uint32Array(n);
    for (let i = 0; i < n; i++) next[i] = firstEdge[i];
    const seen = new Uint8Array(n);
    seen[0] = 1;
    while (stack.length) {
      const v = stack[stack.length - 1];
      let pushed = false;
      while (next[v] < firstEdge[v + 1]) {
        const e = next[v];
        next[v] += EF;
        if (edges[e + E_TYPE] === weak) continue;
        const w = edges[e + E_TO] / NF;
        if (!seen[w]) {
          seen[w] = 1;
          stack.push(w);
          pushed = true;
          break;
        }
      }
      if (!pushed) {
        stack.pop();
        post[v] = order.length;
        order.push(v);
      }
    }
  }
  const preds = Array.from({ length: n }, () => null);
  for (const v of order) {
    for (let e = firstEdge[v]; e < firstEdge[v + 1]; e += EF) {
      if (edges[e + E_TYPE] === weak) continue;
      const w = edges[e + E_TO] / NF;
      if (preds[w] === null) preds[w] = [];
      preds[w].push(v);
    }
  }
  const idom = new Int32Array(n).fill(-1);
  idom[0] = 0;
  const intersect = (a, b) => {
    while (a !== b) {
      while (post[a] < post[b]) a = idom[a];
      while (post[b] < post[a]) b = idom[b];
    }
    return a;
  };
  for (let changed = true; changed; ) {
    changed = false;
    for (let k = order.length - 2; k >= 0; k--) {
      const v = order[k];
      let d = -1;
      for (const p of preds[v] ?? []) {
        if (idom[p] === -1) continue;
        d = d === -1 ? p : intersect(p, d);
      }
      if (d !== -1 && idom[v] !== d) {
        idom[v] = d;
        changed = true;
      }
    }
  }
  const retained = new Float64Array(n);
  for (const v of order) retained[v] += nodes[v * NF + SELF];
  for (const v of order) if (v !== 0) retained[idom[v]] += retained[v];

  return {
    count: n,
    totalSize: retained[0],
    type: (i) => nodeTypes[nodes[i * NF + TYPE]],
    name: (i) => strings[nodes[i * NF + NAME]],
    selfSize: (i) => nodes[i * NF + SELF],
    retainedSize: (i) => retained[i],
    edgesOf,
    /** The target of `i`'s property (or internal) edge `name`, or -1. */
    child(i, name) {
      for (const e of edgesOf(i)) if (e.name === name && e.type !== "weak") return e.to;
      return -1;
    },
    /**
     * Objects having every one of the named properties (the shape of a class; survives minified class
     * names). A Durable Object instance is a `native` node (workerd's C++ wrapper) with JS properties.
     */
    objectsWith(props) {
      const out = [];
      for (let i = 0; i < n; i++) {
        const type = nodeTypes[nodes[i * NF + TYPE]];
        if (type !== "object" && type !== "native") continue;
        const names = new Set();
        for (const e of edgesOf(i)) if (e.type === "property") names.add(e.name);
        if (props.every((p) => names.has(p))) out.push(i);
      }
      return out;
    },
  };
}
