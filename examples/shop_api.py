"""A tiny shop API for trying tools (examples/tools.toml): order status and table bookings.

    SHOP_API_TOKEN=try-me .venv/bin/uvicorn examples.shop_api:app --port 8100

Every request needs `Authorization: Bearer $SHOP_API_TOKEN`. Who is asking comes from the
`X-Customer` header alone (the WhatsApp sender the assistant answers): a customer sees only
their own orders and books only under their own number. Data lives in memory.
"""

from __future__ import annotations

import datetime
import hmac
import os
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, HTTPException
from pydantic import BaseModel, Field

app = FastAPI(title="Example shop API")

# Orders by the customer's WhatsApp number; 15550000001 is the customer of `make chat`.
ORDERS: dict[str, dict[str, dict[str, Any]]] = {
    "15550000001": {
        "A-1001": {"status": "out for delivery", "eta": "today, 14:00-16:00"},
        "A-0987": {"status": "delivered", "delivered_on": "2026-11-28"},
    },
    "5511987654321": {"B-2002": {"status": "being prepared"}},
}
BOOKINGS: list[dict[str, Any]] = []


def caller(
    authorization: Annotated[str, Header()] = "",
    x_customer: Annotated[str, Header()] = "",
) -> str:
    """The customer the request is for, once the bearer token is right."""
    token = os.environ.get("SHOP_API_TOKEN", "")
    if not token or not hmac.compare_digest(authorization, f"Bearer {token}"):
        raise HTTPException(401, "a valid bearer token is needed")
    if not x_customer:
        raise HTTPException(400, "X-Customer is missing")
    return x_customer


Customer = Annotated[str, Depends(caller)]


@app.get("/orders/{order_id}")
def order_status(order_id: str, customer: Customer) -> dict[str, Any]:
    order = ORDERS.get(customer, {}).get(order_id)
    if order is None:  # someone else's order is as unknown as no order at all
        raise HTTPException(404, f"no order {order_id} for this customer")
    return {"order": order_id, **order}


class Booking(BaseModel):
    date: datetime.date
    time: str = Field(pattern=r"^[0-2][0-9]:[0-5][0-9]$")
    people: int = Field(ge=1, le=12)
    name: str | None = Field(default=None, max_length=80)


@app.post("/bookings", status_code=201)
def book_table(booking: Booking, customer: Customer) -> dict[str, Any]:
    if booking.date < datetime.date.today():
        raise HTTPException(422, "that day has passed")
    number = f"R-{len(BOOKINGS) + 1:04d}"
    BOOKINGS.append({"number": number, "customer": customer, **booking.model_dump(mode="json")})
    return {"booking": number, "date": booking.date.isoformat(), "time": booking.time}
