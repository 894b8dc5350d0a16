"""The function app: composes the blueprints; nothing else lives here."""

import azure.functions as func

from extensions.bot_messages import bp as bot_messages_bp
from extensions.callout import bp as callout_bp
from extensions.health import bp as health_bp
from extensions.pickup_page import bp as pickup_bp
from extensions.sweep_timer import bp as sweep_bp
from extensions.worker import bp as worker_bp
from phones.triggers import bp as phones_bp

app = func.FunctionApp()
app.register_functions(health_bp)
app.register_functions(callout_bp)
app.register_functions(worker_bp)
app.register_functions(pickup_bp)
app.register_functions(phones_bp)
app.register_functions(sweep_bp)
app.register_functions(bot_messages_bp)
