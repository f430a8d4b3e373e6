"""One annotator per pattern family; each takes its op sets and options as data (a frozen
dataclass) so the x86 and XNNPACK quantizers reuse the same code with different tables."""
