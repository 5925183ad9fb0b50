"""factory_boy factories for the project's models."""

from __future__ import annotations

from decimal import Decimal

import factory
from django.contrib.auth import get_user_model

from catalog.models import Item
from customers.models import Customer, Membership, Role


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    name = factory.Sequence(lambda n: f"Shop {n}")
    slug = factory.Sequence(lambda n: f"shop-{n}")


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    is_staff = True
    password = factory.PostGenerationMethodCall("set_password", "correct horse battery")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    customer = factory.SubFactory(CustomerFactory)
    user = factory.SubFactory(UserFactory)
    # Tests written before roles expect a member to do everything of the customer, as migration
    # 0004 keeps it for existing members; role tests name the role they test.
    role = Role.ADMIN


class ItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Item

    customer = factory.SubFactory(CustomerFactory)
    external_id = factory.Sequence(lambda n: f"sku-{n}")
    title = factory.Sequence(lambda n: f"Item {n}")
    brand = "Acme"
    categories = factory.LazyFunction(lambda: ["shoes", "shoes/running"])
    price = Decimal("50.00")
    in_stock = True
