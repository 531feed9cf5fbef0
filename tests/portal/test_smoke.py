from django.urls import reverse


def test_it_shows_alice_the_seaside_dashboard(client, world):
    client.force_login(world.alice)
    response = client.get(reverse("dashboard", args=["seaside"]))
    assert response.status_code == 200
    assert b"Seaside Stays" in response.content


def test_mallory_gets_404_on_seaside_dashboard(client, world):
    client.force_login(world.mallory)
    assert client.get(reverse("dashboard", args=["seaside"])).status_code == 404
