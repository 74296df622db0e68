"""The interactive docs page (/docs), served entirely by the service: no CDN, so it works offline.

Swagger UI comes from a pinned copy kept as package data (static/swagger-ui, see its README.txt): the
swagger-ui-bundle package on PyPI carries 4.15.5, which cannot render an OpenAPI 3.1 document.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

SWAGGER_UI_VERSION = "5.35.0"
STATIC_DIR = Path(__file__).resolve().parent / "static" / "swagger-ui"
DOCS_URL = "/docs"
STATIC_URL = f"{DOCS_URL}/static"


def install_docs(app: FastAPI) -> None:
    """Mount the Swagger UI files and the page. The app must be built with docs_url=None, redoc_url=None."""
    app.mount(STATIC_URL, StaticFiles(directory=STATIC_DIR), name="docs-static")

    @app.get(DOCS_URL, include_in_schema=False)
    async def docs_page() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url,
            title=f"{app.title} - docs",
            swagger_js_url=f"{STATIC_URL}/swagger-ui-bundle.js?v={SWAGGER_UI_VERSION}",
            swagger_css_url=f"{STATIC_URL}/swagger-ui.css?v={SWAGGER_UI_VERSION}",
            swagger_favicon_url=f"{STATIC_URL}/favicon-32x32.png",
            # validatorUrl null: the badge would otherwise ask validator.swagger.io about the contract.
            # persistAuthorization keeps the token across reloads of the page (in the browser's storage).
            swagger_ui_parameters={"validatorUrl": None, "persistAuthorization": True},
        )
