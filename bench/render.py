def render_markdown(results: dict) -> str:
    import json
    return "# Benchmarks\n\n```\n" + json.dumps(results, indent=1, default=str)[:2000] + "\n```\n"
