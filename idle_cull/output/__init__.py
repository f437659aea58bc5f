"""What a pass leaves behind: the report (JSON and text), Prometheus metrics, the
Pushgateway push and the atomic files they are written to.
"""
