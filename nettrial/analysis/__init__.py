"""Analysis of the study: analysis datasets derived by the protocol's rules, survival statistics
(lifelines, validated against R ``survival``), safety tables, CONSORT flow, figures and the report.

Reads the store (or plain data frames); never imports the service.
"""
