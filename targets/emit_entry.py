"""The model's entry points in the generated C: `tvmgen_<name>_run`, and for a model whose
patch stage streams its input, `tvmgen_<name>_run_streamed` (targets/emit_c.py writes the rest).

- run_default: inputs copied into their arena slots (unless they are the slots), the calls,
  outputs copied out;
- run_streamed: the calls run with the caller's input provider (tvmp_runtime.h) set, and
  `tvmgen_<name>_run` is the same over a whole input in memory, whose windows a generated
  provider copies out row by row; the input never has an arena slot.
"""

from __future__ import annotations

from dataclasses import dataclass

from tvm_patch_core.arena import ArenaPlan
from tvm_patch_core.graph import Graph, TensorKind


@dataclass(frozen=True)
class StreamGeometry:
    """The streamed input as providers see it (tvmp_runtime.h)."""

    layout: str  # NHWC or NCHW
    height: int
    width: int
    channels: int
    element_bytes: int

    @property
    def column_bytes(self) -> int:
        """Bytes of one column of one input row: all channels (NHWC) or one element (NCHW)."""
        return self.element_bytes * (self.channels if self.layout == "NHWC" else 1)


def stream_geometry(graph: Graph) -> StreamGeometry | None:
    """The model's streamed input, or None when its inputs are in the arena."""
    streamed = [t for t in graph.inputs if graph.tensors[t].kind is TensorKind.STREAMED]
    if not streamed:
        return None
    t = graph.tensors[streamed[0]]
    _, a, b, c = t.shape  # batch 1 (patch_planner.stream_refusal)
    h, w, ch = (a, b, c) if graph.stream_layout == "NHWC" else (b, c, a)
    return StreamGeometry(graph.stream_layout, h, w, ch, t.nbytes // (h * w * ch))


def _io_tables(graph: Graph, plan: ArenaPlan, name: str) -> list[str]:
    def slot(name: str) -> str:  # a streamed input has none
        return "0" if graph.tensors[name].kind is TensorKind.STREAMED else f"tvmp_arena + {plan.offset(name)}"

    slots = ", ".join(slot(t) for t in graph.inputs)
    return [
        "",
        f"static void* const input_slots[] = {{{slots}}};",
        f"static void* const output_slots[] = {{{', '.join(f'tvmp_arena + {plan.offset(t)}' for t in graph.outputs)}}};",  # noqa: E501
        f"static const uint32_t input_bytes[] = {{{', '.join(str(graph.tensors[t].nbytes) for t in graph.inputs)}}};",
        f"static const uint32_t output_bytes[] = {{{', '.join(str(graph.tensors[t].nbytes) for t in graph.outputs)}}};",
        "",
        f"void* tvmgen_{name}_input(int32_t i) {{ return input_slots[i]; }}",
        f"void* tvmgen_{name}_output(int32_t i) {{ return output_slots[i]; }}",
        "",
    ]


def _copy_out(graph: Graph) -> list[str]:
    return [
        f"  for (int32_t i = 0; i < {len(graph.outputs)}; ++i) {{",
        "    if (outputs[i] != output_slots[i]) memcpy(outputs[i], output_slots[i], output_bytes[i]);",
        "  }",
        "  return 0;",
        "}",
        "",
    ]


def _harness_names(name: str) -> list[str]:
    return [
        "/* The names the runtime harness calls. */",
        "int32_t tvmp_model_run(const void* const* inputs, void* const* outputs) {",
        f"  return tvmgen_{name}_run(inputs, outputs);",
        "}",
        f"void* tvmp_model_input(int32_t i) {{ return tvmgen_{name}_input(i); }}",
        f"void* tvmp_model_output(int32_t i) {{ return tvmgen_{name}_output(i); }}",
        "",
    ]


def run_default(graph: Graph, plan: ArenaPlan, name: str, steps: list[str]) -> list[str]:
    """tvmgen_<name>_run: inputs copied into their slots, the calls, outputs copied out."""
    return [
        *_io_tables(graph, plan, name),
        f"int32_t tvmgen_{name}_run(const void* const* inputs, void* const* outputs) {{",
        "  int32_t rc;",
        "  tvmp_runtime_init();",
        f"  for (int32_t i = 0; i < {len(graph.inputs)}; ++i) {{",
        "    if (inputs[i] != input_slots[i]) memcpy(input_slots[i], inputs[i], input_bytes[i]);",
        "  }",
        *steps,
        *_copy_out(graph),
        *_harness_names(name),
    ]


def run_streamed(graph: Graph, plan: ArenaPlan, name: str, steps: list[str], g: StreamGeometry) -> list[str]:
    """tvmgen_<name>_run_streamed (the caller's provider), and tvmgen_<name>_run over a whole
    input in memory (windows copied out of it by `read_whole_input`)."""
    if g.layout == "NHWC":  # h rows of w pixels, each row contiguous in the input
        copy = [
            "  for (int32_t y = 0; y < h; ++y, out += row) {",
            f"    memcpy(out, in + ((uint32_t)(y0 + y) * {g.width}u + (uint32_t)x0) * {g.column_bytes}u, row);",
            "  }",
        ]
    else:  # C planes of h rows of w
        copy = [
            f"  for (uint32_t c = 0; c < {g.channels}u; ++c) {{",
            "    for (int32_t y = 0; y < h; ++y, out += row) {",
            f"      memcpy(out, in + ((c * {g.height}u + (uint32_t)(y0 + y)) * {g.width}u + (uint32_t)x0) * "
            f"{g.element_bytes}u, row);",
            "    }",
            "  }",
        ]
    return [
        *_io_tables(graph, plan, name),
        "static int32_t run_calls(void) {",
        "  int32_t rc;",
        *steps,
        "  return 0;",
        "}",
        "",
        f"int32_t tvmgen_{name}_run_streamed(tvmp_input_provider provider, void* ctx, void* const* outputs) {{",
        "  tvmp_runtime_init();",
        "  tvmp_stream_set(provider, ctx);",
        "  int32_t rc = run_calls();",
        "  tvmp_stream_set(0, 0);",
        "  if (rc != 0) return rc;",
        *_copy_out(graph),
        "/* The provider of a whole input in memory: each window's rows copied out of it. */",
        "static int32_t read_whole_input(void* ctx, void* dst, int32_t y0, int32_t x0, int32_t h, int32_t w) {",
        "  const uint8_t* in = (const uint8_t*)ctx;",
        "  uint8_t* out = (uint8_t*)dst;",
        f"  const uint32_t row = (uint32_t)w * {g.column_bytes}u;",
        *copy,
        "  return 0;",
        "}",
        "",
        f"int32_t tvmgen_{name}_run(const void* const* inputs, void* const* outputs) {{",
        f"  return tvmgen_{name}_run_streamed(read_whole_input, (void*)inputs[0], outputs);",
        "}",
        "",
        *_harness_names(name),
        "int32_t tvmp_model_run_streamed(tvmp_input_provider provider, void* ctx, void* const* outputs) {",
        f"  return tvmgen_{name}_run_streamed(provider, ctx, outputs);",
        "}",
        "",
    ]
