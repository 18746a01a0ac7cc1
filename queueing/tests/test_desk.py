import pytest
from django.urls import reverse

from queueing.models import Visit

pytestmark = pytest.mark.django_db


def test_it_shows_the_board_in_the_services_words(leader_client):
    response = leader_client.get(reverse("queueing:desk"))
    assert response.status_code == 200
    for words in ["ADD TO QUEUE", "Current Sessions", "STUDYSmarter Queue", "Librarian Queue",
                  "STUDYSmarter Team Available", "Librarians Available"]:
        assert words in response.text
    assert response["Cache-Control"].startswith("max-age=0")


def test_it_adds_a_student(leader_client, leader):
    response = leader_client.post(reverse("queueing:add"), {
        "student_name": "Zoë Ng", "student_number": "21234567", "unit_code": "cits 3200",
        "team": 1, "enquiry_type": 1,
    })
    assert response.status_code == 302
    visit = Visit.objects.get()
    assert (visit.student_name, visit.unit_code, visit.added_by) == ("Zoë Ng", "CITS3200", leader)
