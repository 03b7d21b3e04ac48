"""CoT data: question -> a correct step-by-step rationale ending "The answer is X." (`rationales`:
the target style, gold and sampled; `spec`: the registered stage)."""
from .rationales import (answer_sentence, cot_record, finish_rationale, gold_cot, gold_rationale, gsm8k_gold_rationale,
                         has_worked_steps, math_gold_rationale, select_rationales, strong_model_spec)
from .spec import COT_STAGE, CotSettings, CotStage, CotSummary, sample_cot

__all__ = ["COT_STAGE", "CotSettings", "CotStage", "CotSummary", "answer_sentence", "cot_record", "finish_rationale",
           "gold_cot", "gold_rationale", "gsm8k_gold_rationale", "has_worked_steps", "math_gold_rationale", "sample_cot", "select_rationales",
           "strong_model_spec"]
