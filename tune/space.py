"""The search space for microcontroller kernels: MetaSchedule's CPU rules without threads or SIMD.

MetaSchedule's "llvm" defaults parallelise (a Cortex-M has one core and no thread pool) and
vectorise, and constructing them imports every tensor intrinsic TVM has. This space keeps
what matters on a single in-order core: inlining (padding included, so no padded copy of the
input), multi-level tiling of the reduction with its epilogue computed at a tile, unrolling,
and random compute locations; the SRAM cap is one more postprocessor.
"""

from __future__ import annotations

from tvm.s_tir.meta_schedule import mutator as M
from tvm.s_tir.meta_schedule import postproc as P
from tvm.s_tir.meta_schedule import schedule_rule as R
from tvm.s_tir.meta_schedule.search_strategy import EvolutionarySearch
from tvm.s_tir.meta_schedule.space_generator import PostOrderApply

UNROLL_STEPS = [0, 16, 64, 512]


def schedule_rules() -> list:
    return [
        R.InlineConstantScalars(),
        R.AutoInline(
            into_producer=False,
            into_consumer=True,
            inline_const_tensor=True,
            disallow_if_then_else=False,  # padding inlines into the conv, as InlineKernels does
            require_injective=True,
            require_ordered=True,
            disallow_op=[],
        ),
        R.MultiLevelTiling(
            structure="SSRSRS",
            tile_binds=None,
            max_innermost_factor=64,
            vector_load_lens=None,
            reuse_read=None,
            reuse_write=R.ReuseType(req="may", levels=[1, 2], scope="global"),
        ),
        R.ParallelizeVectorizeUnroll(
            max_jobs_per_core=-1, max_vectorize_extent=-1, unroll_max_steps=UNROLL_STEPS, unroll_explicit=True
        ),
        R.RandomComputeLocation(),
    ]


def postprocs(extra: list | None = None) -> list:
    return [P.DisallowDynamicLoop(), P.RewriteParallelVectorizeUnroll(), P.RewriteReductionBlock(), *(extra or [])]


def mutators() -> dict:
    return {M.MutateTileSize(): 0.9, M.MutateComputeLocation(): 0.05, M.MutateUnroll(): 0.03}


def design_space(extra_postprocs: list | None = None) -> PostOrderApply:
    return PostOrderApply(sch_rules=schedule_rules(), postprocs=postprocs(extra_postprocs), mutator_probs=mutators())


def search_strategy(population: int = 64) -> EvolutionarySearch:
    """Evolutionary search sized for a 2-core machine (MetaSchedule's default population is 512)."""
    return EvolutionarySearch(population_size=population, init_min_unmeasured=min(population, 16), genetic_num_iters=2)
