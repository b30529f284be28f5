"""The live browser app (Solara): ``viz/app.py``, started by ``resim viz``.

Front-end code only: it imports ``sim`` and never the other way round (STYLE.md 1).
"""
