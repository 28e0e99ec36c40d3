"""Every text the web page shows, in English and Chinese.  Both tables have the same keys."""

from __future__ import annotations

from collections.abc import Callable

from thinkchain.chain.labels import code_failure_detail, label
from thinkchain.sandbox.result import STATUSES

# The ends of a code run named beside "Error": a plain exception needs no name (its traceback
# says it), and a run that went well is not an error.
FAILURES = tuple(status for status in STATUSES if status not in ("ok", "error"))

LANGUAGES = {"en": "English", "zh": "中文"}

EN: dict[str, str] = {
    # header and question
    "title": "thinkchain: reasoning in visible steps",
    "description": (
        "An ordinary instruct model, asked to think in explicit steps before it answers, "
        "in the manner of OpenAI's o1. Each step appears as the model writes it, with its "
        "own time and tokens; the final answer comes last."
    ),
    "placeholder": "For example: How many letters r are in the word strawberry?",
    "follow_up": "Ask a follow-up question",
    "new_chat": "New conversation",
    "stop": "Stop",
    "compare": "Compare with a direct answer",
    "compare_help": (
        "Also ask the same model for a plain one-shot answer, without reasoning steps, "
        "and show it beside the chain."
    ),
    "question_empty": "Please type a question first.",
    "question_not_text": "The question must be text.",
    "question_too_long": (
        "The question is {length:,} characters long; the limit is {limit:,}. Please shorten it."
    ),
    # while it runs
    "status_starting": "Starting…",
    "status_step": "Reasoning: step {index} · {elapsed}",
    "status_answer": "Writing the final answer · {elapsed}",
    "status_direct": "Answering directly · {elapsed}",
    # The same headings as the CLI's and the proxy's (labels.py), so they read alike.
    "step_heading": label("en", "step_heading"),
    "step_untitled": label("en", "untitled_step"),
    # " (time limit)" after "Error" for each limit or failure that can stop a code run.
    **{f"code_failure_{status}": code_failure_detail(status, "en") for status in FAILURES},
    "step_writing": "writing…",
    "step_meta": "{seconds} · {tokens} tokens",
    "step_attempts": "{attempts} attempts",
    "thought": "Thought for {seconds} · {steps} steps",
    "thought_one": "Thought for {seconds} · 1 step",
    "code_running": "Running the code…",
    "code_output": "Output · {seconds}",
    "code_silent": "no output",
    "code_failed": "Error{detail} · {seconds}",
    "code_cut": "output cut",
    "notice_retry": "Step {index}: attempt {attempt} was discarded ({reason}).",
    "notice_retry_answer": "Final answer: attempt {attempt} was discarded ({reason}).",
    "notice_discarded": "Step {index} was cut: {reason}",
    # results
    "total_time": "Total time: {seconds}",
    "totals": "{steps} steps · {tokens} generated tokens · {model}",
    "totals_one": "1 step · {tokens} generated tokens · {model}",
    "retries": "{count} discarded attempts",
    "repeated": "{count} repeated step cut",
    "step_limit": "stopped at the step limit",
    "direct_heading": "Direct answer (no reasoning)",
    "direct_meta": "{seconds} · {tokens} tokens",
    "download_md": "Download as Markdown",
    "download_json": "Download as JSON",
    "stopped": "Stopped. The steps finished before you pressed Stop are kept.",
    "interrupted": "This chain was interrupted (its process ended). The finished steps are kept.",
    "still_running": "This chain is still running in another window or process.",
    # errors, by ChainError kind
    "error_backend_error": "The model server failed: {message}",
    "error_step_failed": "A step could not be generated: {message}",
    "error_answer_failed": "The final answer could not be generated: {message}",
    "error_token_budget": "The token budget is spent: {message}",
    "error_time_budget": "The time budget is spent: {message}",
    "error_context_overflow": "The question does not fit the model's context: {message}",
    "error_invalid_input": "The question cannot be asked: {message}",
    "error_other": "The chain failed: {message}",
    "backend_failed": "The model cannot be used: {message}",
    "settings_invalid": "These settings do not work together: {message}",
    # sidebar: settings
    "settings": "Settings",
    "backend": "Model",
    "backend_embedded": "Embedded model (runs here, on the CPU)",
    "backend_server": "OpenAI-compatible server",
    "backend_demo": "Scripted demo (no model)",
    "embedded_model": "Embedded model",
    "model_missing": (
        "The embedded model {name} is not downloaded yet: run `thinkchain models pull {alias}`."
    ),
    "loading_model": "Loading the model…",
    "server_url": "Server URL",
    "server_url_help": "For example http://localhost:8000/v1 (vLLM, llama.cpp, Ollama, OpenAI).",
    "server_url_missing": "Please enter the server's URL in the sidebar.",
    "server_model": "Model name on the server",
    "server_model_help": "Leave empty to use the server's first model.",
    "api_key": "API key",
    "mode": "Reasoning mode",
    "mode_iterative": "Step by step (one call per step)",
    "mode_iterative-text": "Step by step in free text (one call per step)",
    "mode_single-pass": "All steps in one call",
    "mode_direct": "Direct answer (one call, no reasoning)",
    "mode_cot": "Think, then answer (one call)",
    "strategy": "Strategy",
    "strategy_chain": "One chain",
    "strategy_sc": "Self-consistency: several chains vote",
    "strategy_both": "Both ways: a program and prose check each other",
    "k_samples": "Chains that vote",
    "k_samples_help": "How many chains answer independently; the most common answer wins.",
    "status_samples": "Chains answering independently: {done} of {k} done · {elapsed}",
    "sample_running": "Chain {index}: step {steps} …",
    "sample_done": "Chain {index}: {answer}",
    "sample_failed": "Chain {index}: no answer ({reason})",
    "vote_line": "Vote of {voters} chains: {counts}. The winning chain is shown below.",
    "vote_none": "No chain gave a readable answer.",
    "temperature": "Temperature",
    "min_steps": "Minimum steps",
    "max_steps": "Maximum steps",
    "max_tokens": "Max tokens per step",
    "reasoning_lang": "Language of the reasoning",
    "lang_auto": "Same as the question",
    "lang_en": "English",
    "lang_zh": "Chinese",
    "budgets": "Budgets",
    "max_total_tokens": "Max generated tokens for the whole chain (0: no limit)",
    "max_seconds": "Max seconds for the whole chain (0: no limit)",
    "code_steps": "Python code steps",
    "code_steps_help": (
        "Let the model write a Python block in a step: it runs in a sandbox, its output shows "
        "under the step, and the model goes on from it."
    ),
    # sidebar: history
    "history": "History",
    "history_empty": "No conversations yet.",
    "history_turns": "{count} questions",
    "history_unavailable": "The history is not available: {message}",
    "history_not_saved": "This chain is shown but could not be saved to the history: {message}",
    "history_opened": "From the history · {when} · {model}",
}

ZH: dict[str, str] = {
    "title": "thinkchain：看得见每一步的推理",
    "description": (
        "让一个普通的指令模型像 OpenAI o1 那样先分步思考、后回答。"
        "每一步在模型写出时即刻显示，并附上这一步的用时和词元数；最后给出最终答案。"
    ),
    "placeholder": "例如：strawberry 这个单词里有几个字母 r？",
    "follow_up": "继续提问",
    "new_chat": "新对话",
    "stop": "停止",
    "compare": "与直接回答对比",
    "compare_help": "同时让同一个模型不经推理、一次性直接回答同一个问题，并排显示在推理链旁边。",
    "question_empty": "请先输入一个问题。",
    "question_not_text": "问题必须是文本。",
    "question_too_long": "问题长度为 {length:,} 个字符，上限为 {limit:,} 个字符，请缩短后再试。",
    "status_starting": "正在启动…",
    "status_step": "正在推理：第 {index} 步 · {elapsed}",
    "status_answer": "正在撰写最终答案 · {elapsed}",
    "status_direct": "正在直接回答 · {elapsed}",
    "step_heading": label("zh", "step_heading"),
    "step_untitled": label("zh", "untitled_step"),
    **{f"code_failure_{status}": code_failure_detail(status, "zh") for status in FAILURES},
    "step_writing": "正在书写…",
    "step_meta": "{seconds} · {tokens} 个词元",
    "step_attempts": "尝试了 {attempts} 次",
    "thought": "思考了 {seconds} · 共 {steps} 步",
    "thought_one": "思考了 {seconds} · 共 1 步",
    "code_running": "正在运行代码…",
    "code_output": "输出 · {seconds}",
    "code_silent": "没有输出",
    "code_failed": "出错{detail} · {seconds}",
    "code_cut": "输出已截断",
    "notice_retry": "第 {index} 步：第 {attempt} 次尝试被丢弃（{reason}）。",
    "notice_retry_answer": "最终答案：第 {attempt} 次尝试被丢弃（{reason}）。",
    "notice_discarded": "第 {index} 步被截去：{reason}",
    "total_time": "总用时：{seconds}",
    "totals": "共 {steps} 步 · 生成 {tokens} 个词元 · {model}",
    "totals_one": "共 1 步 · 生成 {tokens} 个词元 · {model}",
    "retries": "丢弃了 {count} 次尝试",
    "repeated": "截去了 {count} 个重复的步骤",
    "step_limit": "达到步数上限后停止",
    "direct_heading": "直接回答（不推理）",
    "direct_meta": "{seconds} · {tokens} 个词元",
    "download_md": "下载为 Markdown",
    "download_json": "下载为 JSON",
    "stopped": "已停止。按下“停止”之前完成的步骤都已保留。",
    "interrupted": "这条推理链被中断了（它的进程已结束）。已完成的步骤都已保留。",
    "still_running": "这条推理链仍在另一个窗口或进程中运行。",
    "error_backend_error": "模型服务出错：{message}",
    "error_step_failed": "无法生成这一步：{message}",
    "error_answer_failed": "无法生成最终答案：{message}",
    "error_token_budget": "词元预算已用完：{message}",
    "error_time_budget": "时间预算已用完：{message}",
    "error_context_overflow": "问题超出了模型的上下文长度：{message}",
    "error_invalid_input": "无法提出这个问题：{message}",
    "error_other": "推理链失败：{message}",
    "backend_failed": "无法使用该模型：{message}",
    "settings_invalid": "这些设置相互矛盾：{message}",
    "settings": "设置",
    "backend": "模型",
    "backend_embedded": "内置模型（在本机 CPU 上运行）",
    "backend_server": "兼容 OpenAI 接口的服务",
    "backend_demo": "脚本演示（不使用模型）",
    "embedded_model": "内置模型",
    "model_missing": "内置模型 {name} 尚未下载：请运行 `thinkchain models pull {alias}`。",
    "loading_model": "正在加载模型…",
    "server_url": "服务地址",
    "server_url_help": "例如 http://localhost:8000/v1（vLLM、llama.cpp、Ollama、OpenAI）。",
    "server_url_missing": "请在侧边栏填写服务地址。",
    "server_model": "服务上的模型名称",
    "server_model_help": "留空则使用服务提供的第一个模型。",
    "api_key": "API 密钥",
    "mode": "推理方式",
    "mode_iterative": "逐步推理（每步调用一次模型）",
    "mode_iterative-text": "以自由文本逐步推理（每步调用一次模型）",
    "mode_single-pass": "一次调用写出全部步骤",
    "mode_direct": "直接回答（调用一次，不推理）",
    "mode_cot": "先思考再回答（调用一次）",
    "strategy": "策略",
    "strategy_chain": "单条推理链",
    "strategy_sc": "自洽投票：多条推理链投票",
    "strategy_both": "两种思路：程序与文字推理相互核对",
    "k_samples": "参与投票的推理链数",
    "k_samples_help": "多少条推理链各自独立作答；出现最多的答案获胜。",
    "status_samples": "多条推理链正在独立作答：已完成 {done}/{k} · {elapsed}",
    "sample_running": "推理链 {index}：第 {steps} 步 …",
    "sample_done": "推理链 {index}：{answer}",
    "sample_failed": "推理链 {index}：没有答案（{reason}）",
    "vote_line": "{voters} 条推理链的投票结果：{counts}。下面显示获胜的推理链。",
    "vote_none": "没有一条推理链给出可读的答案。",
    "temperature": "温度",
    "min_steps": "最少步数",
    "max_steps": "最多步数",
    "max_tokens": "每步最多词元数",
    "reasoning_lang": "推理所用语言",
    "lang_auto": "与问题相同",
    "lang_en": "英文",
    "lang_zh": "中文",
    "budgets": "预算",
    "max_total_tokens": "整条推理链最多生成的词元数（0 表示不限）",
    "max_seconds": "整条推理链最多用时，单位秒（0 表示不限）",
    "code_steps": "Python 代码步骤",
    "code_steps_help": (
        "允许模型在某一步写一段 Python 代码：代码在沙箱中运行，"
        "输出显示在该步下方，模型再据此继续推理。"
    ),
    "history": "历史记录",
    "history_empty": "还没有对话。",
    "history_turns": "{count} 个问题",
    "history_unavailable": "历史记录不可用：{message}",
    "history_not_saved": "这条推理链已显示，但未能保存到历史记录：{message}",
    "history_opened": "来自历史记录 · {when} · {model}",
}

TABLES = {"en": EN, "zh": ZH}


def translator(lang: str) -> Callable[..., str]:
    """``t("key", name=value)``: the text in ``lang``, formatted with the given values."""
    table = TABLES.get(lang, EN)

    def t(key: str, **values: object) -> str:
        text = table.get(key) or EN[key]
        return text.format(**values) if values else text

    return t


def has_text(lang: str, key: str) -> bool:
    return key in TABLES.get(lang, EN)
