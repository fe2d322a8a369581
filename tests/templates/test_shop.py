"""The shop template: customers (auth), products (public read, superuser write), orders."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.templates.helpers import ids, import_template, signup

PRODUCTS = "/api/collections/products/records"
ORDERS = "/api/collections/orders/records"
CUSTOMERS = "/api/collections/customers/records"
ITEMS = [{"product": "p1", "qty": 2}]


@pytest.fixture
async def shop(client: httpx.AsyncClient, su_headers: dict[str, str]) -> dict:
    return await make_shop(client, su_headers)


async def make_shop(client: httpx.AsyncClient, su_headers: dict[str, str]) -> dict:
    """Import the template and create its accounts (also used by test_oracle.py)."""
    await import_template(client, su_headers, "shop")
    c1, h1 = await signup(client, "customers", "c1@example.com", name="Cat")
    c2, h2 = await signup(client, "customers", "c2@example.com", name="Dan")
    return {"c1": c1, "h1": h1, "c2": c2, "h2": h2}


async def test_products_public_read_superuser_write(client: httpx.AsyncClient, shop: dict,
                                                    su_headers: dict[str, str]) -> None:
    h1 = shop["h1"]
    body = {"name": "Lamp", "category": "home", "price": 19.5}
    for headers in (None, h1):
        r = await client.post(PRODUCTS, json=body, headers=headers)
        assert r.status_code == 403 and r.json()["message"] == "Only superusers can perform this action."
    r = await client.post(PRODUCTS, json=body, headers=su_headers)
    assert r.status_code == 200, r.text
    lamp = r.json()["id"]
    r = await client.post(PRODUCTS, json={"name": "Novel", "category": "books", "price": 7}, headers=su_headers)
    novel = r.json()["id"]
    assert ids(await client.get(PRODUCTS)) == sorted([lamp, novel])
    assert (await client.get(f"{PRODUCTS}/{lamp}")).status_code == 200
    assert ids(await client.get(PRODUCTS, params={"filter": "category = 'books'"})) == [novel]
    assert ids(await client.get(PRODUCTS, params={"filter": "price < 10", "sort": "name"})) == [novel]
    assert (await client.patch(f"{PRODUCTS}/{lamp}", json={"price": 1}, headers=h1)).status_code == 403
    assert (await client.delete(f"{PRODUCTS}/{lamp}", headers=h1)).status_code == 403
    assert (await client.patch(f"{PRODUCTS}/{lamp}", json={"price": 21}, headers=su_headers)).status_code == 200
    # field validation: unknown category, negative price
    r = await client.post(PRODUCTS, json={"name": "X", "category": "food", "price": 1}, headers=su_headers)
    assert r.status_code == 400 and "category" in r.json()["data"]
    r = await client.post(PRODUCTS, json={"name": "X", "category": "toys", "price": -1}, headers=su_headers)
    assert r.status_code == 400 and "price" in r.json()["data"]


async def test_product_indexes_exist(client: httpx.AsyncClient, shop: dict, su_headers: dict[str, str]) -> None:
    r = await client.get("/api/collections/products", headers=su_headers)
    joined = " ".join(r.json()["indexes"])
    assert "(`name`)" in joined and "(`category`)" in joined
    r = await client.get("/api/collections/orders", headers=su_headers)
    assert any(i.startswith("CREATE UNIQUE INDEX") and "order_number" in i for i in r.json()["indexes"])


async def test_customers_see_only_themselves(client: httpx.AsyncClient, shop: dict) -> None:
    c1, h1, c2 = shop["c1"], shop["h1"], shop["c2"]
    assert ids(await client.get(CUSTOMERS)) == []
    assert ids(await client.get(CUSTOMERS, headers=h1)) == [c1]
    assert (await client.get(f"{CUSTOMERS}/{c2}", headers=h1)).status_code == 404
    assert (await client.patch(f"{CUSTOMERS}/{c2}", json={"name": "x"}, headers=h1)).status_code == 404
    r = await client.patch(f"{CUSTOMERS}/{c1}", json={"address": "1 Main St"}, headers=h1)
    assert r.status_code == 200 and r.json()["address"] == "1 Main St", r.text
    assert (await client.delete(f"{CUSTOMERS}/{c1}", headers=h1)).status_code == 403


async def test_orders_created_only_for_oneself(client: httpx.AsyncClient, shop: dict,
                                               su_headers: dict[str, str]) -> None:
    c1, h1, c2, h2 = shop["c1"], shop["h1"], shop["c2"], shop["h2"]
    assert (await client.post(ORDERS, json={"customer": c1, "items": ITEMS})).status_code == 400  # guest
    # mass assignment: an order for another customer, or a pre-paid order
    r = await client.post(ORDERS, json={"customer": c2, "items": ITEMS}, headers=h1)
    assert r.status_code == 400 and r.json() == {"data": {}, "message": "Failed to create record.", "status": 400}
    assert (await client.post(ORDERS, json={"customer": c1, "items": ITEMS, "status": "paid"},
                              headers=h1)).status_code == 400
    r = await client.post(ORDERS, json={"customer": c1, "items": ITEMS}, headers=h1)
    assert r.status_code == 200, r.text
    o1 = r.json()
    assert re.fullmatch(r"[A-Z0-9]{12}", o1["order_number"]) and o1["items"] == ITEMS
    r = await client.post(ORDERS, json={"customer": c1, "items": ITEMS, "status": "pending",
                                        "order_number": "ORD-1"}, headers=h1)
    assert r.status_code == 200 and r.json()["order_number"] == "ORD-1", r.text
    o2 = r.json()["id"]
    # order_number is unique
    r = await client.post(ORDERS, json={"customer": c2, "items": ITEMS, "order_number": "ORD-1"}, headers=h2)
    assert r.status_code == 400 and "order_number" in r.json()["data"], r.text
    # items are required
    assert (await client.post(ORDERS, json={"customer": c2}, headers=h2)).status_code == 400
    r = await client.post(ORDERS, json={"customer": c2, "items": ITEMS}, headers=h2)
    assert r.status_code == 200, r.text
    o3 = r.json()["id"]

    assert ids(await client.get(ORDERS)) == []
    assert ids(await client.get(ORDERS, headers=h1)) == sorted([o1["id"], o2])
    assert ids(await client.get(ORDERS, headers=h2)) == [o3]
    # a filter naming the other customer cannot widen the rule
    assert ids(await client.get(ORDERS, params={"filter": f"customer = '{c1}'"}, headers=h2)) == []
    assert (await client.get(f"{ORDERS}/{o2}", headers=h2)).status_code == 404
    assert (await client.get(f"{ORDERS}/{o2}", headers=h1)).status_code == 200
    assert ids(await client.get(ORDERS, headers=su_headers)) == sorted([o1["id"], o2, o3])


async def test_orders_can_only_be_cancelled_by_their_customer(client: httpx.AsyncClient, shop: dict,
                                                              su_headers: dict[str, str]) -> None:
    c1, h1, c2, h2 = shop["c1"], shop["h1"], shop["c2"], shop["h2"]
    o = (await client.post(ORDERS, json={"customer": c1, "items": ITEMS}, headers=h1)).json()["id"]
    paid = (await client.post(ORDERS, json={"customer": c1, "items": ITEMS}, headers=h1)).json()["id"]
    assert (await client.patch(f"{ORDERS}/{paid}", json={"status": "paid"}, headers=su_headers)).status_code == 200

    assert (await client.patch(f"{ORDERS}/{o}", json={"status": "paid"}, headers=h1)).status_code == 404
    assert (await client.patch(f"{ORDERS}/{o}", json={"status": "cancelled"}, headers=h2)).status_code == 404
    assert (await client.patch(f"{ORDERS}/{o}", json={"status": "cancelled", "customer": c2},
                               headers=h1)).status_code == 404
    assert (await client.patch(f"{ORDERS}/{paid}", json={"status": "cancelled"}, headers=h1)).status_code == 404
    r = await client.patch(f"{ORDERS}/{o}", json={"status": "cancelled"}, headers=h1)
    assert r.status_code == 200 and r.json()["status"] == "cancelled", r.text
    assert (await client.patch(f"{ORDERS}/{o}", json={"status": "cancelled"}, headers=h1)).status_code == 404
    # deleting orders is superuser-only
    assert (await client.delete(f"{ORDERS}/{o}", headers=h1)).status_code == 403
    assert (await client.delete(f"{ORDERS}/{o}", headers=su_headers)).status_code == 204
